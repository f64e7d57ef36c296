"""The onnxruntime family: a session on the backend's execution provider (any onnxruntime build: -gpu, -openvino,
…), run on the payload; and its own requests: try many tiny models (`try_load_many`), one provider's kernels
(`kernel_check`, `node_kernels`), which provider ran which node (`placement`)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable, Dict, List

from .common import STATE, ProbeUsageError, decode_values, io_entry
from .family import Family

_ORT_TYPES = {
    "float": "float32", "double": "float64", "float16": "float16", "bfloat16": "bfloat16",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool", "string": "string", "complex64": "complex64", "complex128": "complex128",
}


def _ort_dtype(type_str: str) -> str:
    """`tensor(float)` -> `float32`; non-tensor types in the contract grammar: onnxruntime's
    `seq(map(int64,tensor(float)))` -> `seq(map(int64,float32))`."""
    if type_str.startswith("tensor(") and type_str.endswith(")"):
        inner = type_str[len("tensor("):-1]
        return _ORT_TYPES.get(inner, inner)
    for head in ("seq(", "optional("):
        if type_str.startswith(head) and type_str.endswith(")"):
            inner = type_str[len(head):-1]
            nested = _ort_dtype(inner)
            return head + ("tensor(%s)" % nested if inner.startswith("tensor(") else nested) + ")"
    if type_str.startswith("map(") and type_str.endswith(")") and "," in type_str:
        key, value = type_str[len("map("):-1].split(",", 1)
        return "map(%s,%s)" % (_ORT_TYPES.get(key.strip(), key.strip()), _ort_dtype(value.strip()))
    return type_str


def load_onnx(path: str, backend: Dict[str, Any]) -> Dict[str, Any]:
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    level = backend.get("graph_optimization") or "all"
    if level not in levels:
        raise ProbeUsageError("graph_optimization %r is not one of %s" % (level, sorted(levels)))
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    threads = backend.get("intra_op_threads")
    if threads:  # unset/0: onnxruntime's default (one thread per physical core)
        options.intra_op_num_threads = int(threads)
    provider = backend.get("provider") or "CPUExecutionProvider"
    provider_options = dict(backend.get("provider_options") or {})
    session = ort.InferenceSession(path, sess_options=options, providers=[(provider, provider_options)])
    STATE.kind, STATE.session, STATE.cast_dtype = "onnxruntime", session, None
    STATE.input_names = [i.name for i in session.get_inputs()]
    STATE.output_names = [o.name for o in session.get_outputs()]
    STATE.output_types = {o.name: _ort_dtype(o.type) for o in session.get_outputs()
                          if not o.type.startswith("tensor(")}
    result = {
        "inputs": [io_entry(i.name, _ort_dtype(i.type), i.shape) for i in session.get_inputs()],
        "outputs": [io_entry(o.name, _ort_dtype(o.type), o.shape) for o in session.get_outputs()],
        # What onnxruntime actually uses: an unavailable provider silently falls back to CPU.
        "providers": list(session.get_providers()),
        "runtime_version": "onnxruntime %s" % ort.__version__,
        "precision": "fp32",
    }
    precision = backend.get("precision") or "fp32"
    if precision != "fp32":
        # onnxruntime runs the graph at the dtypes it was exported with; recorded so reports can say so.
        result["precision_note"] = "onnxruntime runs the model as exported; precision %s not applied" % precision
    return result


def _quiet_options(ort: Any) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: probing refusals is the point, not noise in the log
    return options


def op_try_load_many(args: Dict[str, Any]) -> Dict[str, Any]:
    """Try to create a CPU session for each ONNX file; which loaded, and the runtime's error text otherwise.

    The host builds the candidate models (this env may not have `onnx`): opset_support learns the
    runtime's maximum IR version and opset per domain from which tiny models load.
    """
    import onnxruntime as ort

    results = []
    for path in args.get("paths") or []:
        try:
            ort.InferenceSession(path, sess_options=_quiet_options(ort), providers=["CPUExecutionProvider"])
            results.append({"path": path, "ok": True})
        except Exception as exc:  # noqa: BLE001 - each refusal is data
            results.append({"path": path, "ok": False, "error_type": type(exc).__name__, "message": str(exc)[:1000]})
    return {"results": results, "runtime_version": "onnxruntime %s" % ort.__version__, "version": ort.__version__}


def op_kernel_check(args: Dict[str, Any]) -> Dict[str, Any]:
    """Load an ONNX model on the requested provider alone (no silent CPU fallback), then run the payload.

    Loading is not running: a kernel can be missing only for the types seen at run time, so both steps
    are reported. The session is local: the model `load` holds (if any) is left alone.
    """
    import numpy as np
    import onnxruntime as ort

    backend = args.get("backend") or {}
    provider = backend.get("provider") or "CPUExecutionProvider"
    available = list(ort.get_available_providers())
    result: Dict[str, Any] = {"provider": provider, "available_providers": available,
                              "runtime_version": "onnxruntime %s" % ort.__version__}
    if provider not in available:
        result["provider_available"] = False
        return result
    result["provider_available"] = True
    options = _quiet_options(ort)
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    options.graph_optimization_level = levels.get(backend.get("graph_optimization") or "all", levels["all"])
    if provider != "CPUExecutionProvider":
        # Without this, nodes the provider cannot run are silently placed on CPU.
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    provider_options = dict(backend.get("provider_options") or {})
    try:
        session = ort.InferenceSession(args["artifact"], sess_options=options,
                                       providers=[(provider, provider_options)])
    except Exception as exc:  # noqa: BLE001 - the refusal is the finding
        result.update(loaded=False, error_type=type(exc).__name__, message=str(exc)[:4000])
        return result
    result.update(loaded=True, providers=list(session.get_providers()))
    inputs = args.get("inputs")
    if inputs:
        with np.load(inputs, allow_pickle=False) as npz:
            arrays = decode_values({k: npz[k] for k in npz.files})
        names = [i.name for i in session.get_inputs()]
        missing = [n for n in names if n not in arrays]
        if missing:
            result.update(ran=None, run_skipped="the payload has no input named %s" % ", ".join(missing))
            return result
        try:
            session.run(None, {n: arrays[n] for n in names})
            result["ran"] = True
        except Exception as exc:  # noqa: BLE001
            result.update(ran=False, run_error_type=type(exc).__name__, run_message=str(exc)[:4000])
    return result


def _payload(path: str) -> Dict[str, Any]:
    import numpy as np

    with np.load(path, allow_pickle=False) as npz:
        return decode_values({k: npz[k] for k in npz.files})


def op_placement(args: Dict[str, Any]) -> Dict[str, Any]:
    """Which execution provider ran each node, as serving would run the model (CPU fallback allowed): a session
    with profiling on runs the payload once, and the profile's per-node kernel events name their provider.

    A provider that compiles subgraphs (OpenVINO, TensorRT) shows one kernel per fused subgraph
    (`OpenVINO-EP-subgraph_1`): those are its partitions. The session is local: `load`'s model is left alone.
    """
    import onnxruntime as ort

    backend = args.get("backend") or {}
    provider = backend.get("provider") or "CPUExecutionProvider"
    options = _quiet_options(ort)
    options.graph_optimization_level = _LEVELS(ort).get(backend.get("graph_optimization") or "all")
    folder = tempfile.mkdtemp(prefix="modelcompat-profile-")
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "profile")
    session = ort.InferenceSession(args["artifact"], sess_options=options,
                                   providers=[(provider, dict(backend.get("provider_options") or {}))])
    arrays = _payload(args["inputs"])
    session.run(None, {i.name: arrays[i.name] for i in session.get_inputs()})
    profile = session.end_profiling()
    try:
        with open(profile) as fh:
            events = json.load(fh)
    finally:
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    placement: Dict[str, Dict[str, int]] = {}
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        where = (event.get("args") or {}).get("provider") or "?"
        op = (event.get("args") or {}).get("op_name") or "?"
        ops = placement.setdefault(where, {})
        ops[op] = ops.get(op, 0) + 1
    return {"provider": provider, "providers": list(session.get_providers()), "placement": placement,
            "runtime_version": "onnxruntime %s" % ort.__version__}


def _LEVELS(ort: Any) -> Dict[str, Any]:
    return {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def _node_kernels(args: Dict[str, Any]) -> Dict[str, Any]:
    from .node_kernels import op_node_kernels  # here: node_kernels imports this module

    return op_node_kernels(args)


class OnnxruntimeFamily(Family):
    kind = "onnxruntime"
    module = "onnxruntime"
    distributions = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino")
    zygote_imports = ["numpy", "onnxruntime"]
    ops = {"try_load_many": op_try_load_many, "kernel_check": op_kernel_check, "node_kernels": _node_kernels,
           "placement": op_placement}

    def version(self) -> str:
        import onnxruntime as ort

        return ort.__version__

    def devices(self) -> List[str]:
        import onnxruntime as ort

        return list(ort.get_available_providers())

    def load(self, path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
             output_names: List[str]) -> Dict[str, Any]:
        if fmt != "onnx":
            raise ProbeUsageError("onnxruntime reads onnx artifacts, not %r" % (fmt,))
        return load_onnx(path, backend)

    def bind(self, arrays: Dict[str, Any]) -> Callable[[], List[Any]]:
        feed = {n: arrays[n] for n in STATE.input_names}
        session = STATE.session
        return lambda: session.run(None, feed)


FAMILY = OnnxruntimeFamily()
