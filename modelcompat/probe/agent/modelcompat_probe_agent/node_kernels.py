"""`node_kernels`: which one-node models (one per kernel signature, built by the host) the cell's execution
provider can run alone, which only the CPU provider could run (a fallback), and which nothing runs here."""
from __future__ import annotations

from typing import Any, Dict

from .family_onnxruntime import _quiet_options


def _session(ort: Any, path: str, provider: str, options_of: Dict[str, Any], level: Any, alone: bool) -> None:
    options = _quiet_options(ort)
    options.graph_optimization_level = level
    if alone and provider != "CPUExecutionProvider":
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    ort.InferenceSession(path, sess_options=options, providers=[(provider, options_of)])


def op_node_kernels(args: Dict[str, Any]) -> Dict[str, Any]:
    """For each {key, path}: `ok` (the provider alone loads it), `fallback` (only the CPU provider does), or
    `missing` with the runtime's message. Sessions are created and dropped one at a time."""
    import onnxruntime as ort

    backend = args.get("backend") or {}
    provider = backend.get("provider") or "CPUExecutionProvider"
    provider_options = dict(backend.get("provider_options") or {})
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    level = levels.get(backend.get("graph_optimization") or "all", levels["all"])
    results = []
    for item in args.get("models") or []:
        entry: Dict[str, Any] = {"key": item["key"]}
        try:
            _session(ort, item["path"], provider, provider_options, level, alone=True)
            entry["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 - each refusal is data
            entry.update(status="missing", message=str(exc)[:2000])
            if provider != "CPUExecutionProvider":
                try:
                    _session(ort, item["path"], "CPUExecutionProvider", {}, level, alone=True)
                    entry["status"] = "fallback"
                except Exception as cpu_exc:  # noqa: BLE001 - no CPU kernel either: missing, and CPU says why
                    # (with fallback disabled the provider only says "assigned to the default CPU EP")
                    entry["message"] = str(cpu_exc)[:2000]
        results.append(entry)
    return {"results": results, "runtime_version": "onnxruntime %s" % ort.__version__}
