"""Every node a cell's runtime has no kernel for, each reduced to a one-node model with a repro bundle.

A missing kernel is already minimal at one node: the one-node model `operator_coverage` asks the runtime about
(model/single_nodes.py) *is* the reduced case. For each signature the cell's probe refuses, this writes a bundle
in the standard ONNX test-case layout (`model.onnx`, `test_data_set_0/input_*.pb`), the cell's environment lock
and `repro.py`, which creates the session with plain onnxruntime (no onnx, no modelcompat) and fails the same
way; the passing neighbour is the same node on the CPU provider when only the cell's provider lacks it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from modelcompat.execution.localise import Side
from modelcompat.files.atomic import write_bytes, write_text
from modelcompat.model.single_nodes import build_node_models
from modelcompat.probe.launcher import ProbeSession

CODE = "operator_coverage.missing_kernel"

# Plain Python 3.8+, stdlib + numpy + onnxruntime; its settings are the JSON file beside it.
SCRIPT = r'''"""Reproduce a missing kernel with plain onnxruntime: python repro.py (exit 1: reproduced, 0: it loads and runs).

Creates a session for model.onnx (one node) with the cell's execution provider and graph optimisation level, then
runs it once on test_data_set_0/input_*.pb. Needs numpy and onnxruntime only.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    with open(os.path.join(HERE, "repro.json")) as f:
        config = json.load(f)
    level = ort.GraphOptimizationLevel
    levels = {"disable": level.ORT_DISABLE_ALL, "basic": level.ORT_ENABLE_BASIC,
              "extended": level.ORT_ENABLE_EXTENDED, "all": level.ORT_ENABLE_ALL}
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[config["graph_optimization"]]
    if config["provider"] != "CPUExecutionProvider":
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        session = ort.InferenceSession(os.path.join(HERE, "model.onnx"), sess_options=options,
                                       providers=[(config["provider"], config["provider_options"])])
    except Exception as exc:
        print("onnxruntime %s %s: %s" % (ort.__version__, config["provider"], exc))
        print("FAIL %s (modelcompat found %s on %s)" % (config["expected_code"], config["node"], config["cell"]))
        return 1
    data = np.load(os.path.join(HERE, "inputs.npz"), allow_pickle=False)
    session.run(None, {name: data[name] for name in data.files})
    print("onnxruntime %s %s: %s loads and runs: pass" % (ort.__version__, config["provider"], config["node"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def _folder_name(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", node)[:80] or "node"


def _zeros(vi: onnx.ValueInfoProto) -> np.ndarray:
    """A value of the input's type, each symbolic or unknown dimension 1: a session that loads can run it."""
    tensor = vi.type.tensor_type
    dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tensor.shape.dim]
    return np.zeros(shape, dtype=dtype)


def _write_case(model_path: Path, folder: Path) -> list[str]:
    """model.onnx and its inputs (test_data_set_0/input_*.pb, and inputs.npz for the script); the input names."""
    model = onnx.load(str(model_path))
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / "model.onnx", model.SerializeToString())
    data = folder / "test_data_set_0"
    data.mkdir(exist_ok=True)
    values = {vi.name: _zeros(vi) for vi in model.graph.input}
    for i, (name, value) in enumerate(values.items()):
        write_bytes(data / f"input_{i}.pb", numpy_helper.from_array(value, name).SerializeToString())
    np.savez(folder / "inputs.npz", **values)
    return list(values)


def kernel_bundles(side: Side, out: Path, workdir: Path, timeout_s: float = 600.0) -> dict[str, Any]:
    """Ask the cell's probe about every kernel signature of its model; write a bundle per refused one under `out`.

    Returns {"cell", "code", "nodes_total", "missing": [{"nodes", "op_type", "domain", "opset", "input_types",
    "message", "out", "cpu_passes"}], "not_assessed": [...]}.
    """
    models = build_node_models(side.model, workdir / "single_nodes")
    asked = [{"key": k.key, "path": k.path} for k in models.kinds.values() if k.path]
    probe = ProbeSession(side.python, side.label, workdir, timeout_s=timeout_s, kind="onnxruntime")
    try:
        reply = probe.request("node_kernels", models=asked, backend=side.backend)
    finally:
        probe.close()
    status = {r["key"]: r for r in reply["results"]}
    missing: list[dict[str, Any]] = []
    for kind in models.kinds.values():
        result = status.get(kind.key)
        if result is None or result["status"] != "missing":
            continue
        folder = out / _folder_name(kind.nodes[0])
        _write_case(Path(kind.path or ""), folder)
        config = {"provider": side.backend.get("provider") or "CPUExecutionProvider",
                  "provider_options": side.backend.get("provider_options") or {},
                  "graph_optimization": side.backend.get("graph_optimization") or "all",
                  "expected_code": CODE, "node": kind.nodes[0], "cell": side.label}
        write_text(folder / "repro.json", json.dumps(config, indent=2))
        write_text(folder / "repro.py", SCRIPT)
        write_text(folder / "requirements.lock", "".join(f"{k}=={v}\n" for k, v in sorted(side.lock.items())))
        missing.append({"nodes": kind.nodes, "op_type": kind.op_type, "domain": kind.domain, "opset": kind.opset,
                        "input_types": list(kind.input_types), "message": result.get("message", ""),
                        "out": str(folder)})
    doc = {"cell": side.label, "code": CODE, "runtime_version": reply.get("runtime_version"),
           "nodes_total": len(models.order), "signatures": len(models.kinds), "missing": missing,
           "not_assessed": [{"nodes": k.nodes, "why": k.why_not} for k in models.kinds.values() if not k.path]}
    write_text(out / "kernels.json", json.dumps(doc, indent=2))
    return doc
