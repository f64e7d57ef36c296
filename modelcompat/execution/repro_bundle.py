"""A repro bundle: the reduced model, its inputs and the other side's outputs in the standard ONNX test-case
layout (`test_data_set_0/input_*.pb`, `output_*.pb`), the cell's environment lock, and `repro.py`, which
reproduces the failure with plain onnxruntime and numpy (no onnx, no modelcompat: it reads the .pb files itself).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from onnx import numpy_helper

from modelcompat.execution.localise import Side
from modelcompat.execution.reduce import Case
from modelcompat.files.atomic import write_bytes, write_text

# The script is plain Python 3.8+, stdlib + numpy + onnxruntime; its settings are the JSON file beside it.
SCRIPT = r'''"""Reproduce a modelcompat parity failure with plain onnxruntime: python repro.py (exit 1: reproduced).

Runs model.onnx on test_data_set_0/input_*.pb with the cell's execution provider and graph optimisation level,
and compares with output_*.pb (the other side's values) at the cell's tolerance. Needs numpy and onnxruntime only.
"""
import json
import os
import struct
import sys

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
# TensorProto.DataType -> numpy dtype (the ones raw_data carries here)
DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
          10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def _varint(buf, pos):
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def read_tensor(path):
    """A TensorProto file (dims, data_type, name, raw_data) as (name, array), without the onnx package."""
    with open(path, "rb") as f:
        buf = f.read()
    pos, dims, dtype, name, raw = 0, [], 1, "", b""
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            if field == 1:
                dims.append(value)
            elif field == 2:
                dtype = value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            chunk = buf[pos:pos + length]
            pos += length
            if field == 1:  # packed dims
                p = 0
                while p < len(chunk):
                    value, p = _varint(chunk, p)
                    dims.append(value)
            elif field == 8:
                name = chunk.decode()
            elif field == 9:
                raw = chunk
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ValueError("%s: unsupported protobuf wire type %d" % (path, wire))
    return name, np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(dims)


def main():
    with open(os.path.join(HERE, "repro.json")) as f:
        config = json.load(f)
    data = os.path.join(HERE, "test_data_set_0")
    inputs = dict(read_tensor(os.path.join(data, "input_%d.pb" % i)) for i in range(config["n_inputs"]))
    expected = dict(read_tensor(os.path.join(data, "output_%d.pb" % i)) for i in range(config["n_outputs"]))
    level = ort.GraphOptimizationLevel
    levels = {"disable": level.ORT_DISABLE_ALL, "basic": level.ORT_ENABLE_BASIC,
              "extended": level.ORT_ENABLE_EXTENDED, "all": level.ORT_ENABLE_ALL}
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[config["graph_optimization"]]
    session = ort.InferenceSession(os.path.join(HERE, "model.onnx"), sess_options=options,
                                   providers=[(config["provider"], config["provider_options"])])
    names = [o.name for o in session.get_outputs()]
    actual = dict(zip(names, session.run(None, inputs)))
    code = None
    for name, want in expected.items():
        got = np.asarray(actual[name], np.float64)
        want = np.asarray(want, np.float64)
        atol, rtol = config["tolerance"][name]
        lone = int(np.count_nonzero(np.isfinite(got) != np.isfinite(want)))
        close = np.isclose(got, want, atol=atol, rtol=rtol, equal_nan=True)
        finite = np.isfinite(got) & np.isfinite(want)
        worst = float(np.abs(got[finite] - want[finite]).max()) if finite.any() else 0.0
        print("%s: max abs %.3g, %d NaN/Inf on one side only (atol %g, rtol %g)" % (name, worst, lone, atol, rtol))
        if lone:
            code = "numerical_parity.non_finite"
        elif not close.all() and code is None:
            code = "numerical_parity.tolerance_exceeded"
    print("onnxruntime %s %s: %s" % (ort.__version__, config["provider"], code or "pass"))
    if code is None:
        return 0
    print("FAIL %s (modelcompat found %s)" % (code, config["expected_code"]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
'''


def _write_case(case: Case, folder: Path) -> None:
    """model.onnx and test_data_set_0/{input,output}_*.pb, named after the graph's inputs and outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / "model.onnx", case.model.SerializeToString())
    data = folder / "test_data_set_0"
    data.mkdir(exist_ok=True)
    for i, (name, value) in enumerate(case.inputs.items()):
        write_bytes(data / f"input_{i}.pb", numpy_helper.from_array(value, name).SerializeToString())
    for i, (name, value) in enumerate(case.expected.items()):
        write_bytes(data / f"output_{i}.pb", numpy_helper.from_array(value, name).SerializeToString())


def write_bundle(out: Path, failing: Case, passing: Case | None, cell: Side, against: Side, target: str,
                 extra: dict[str, Any]) -> dict[str, Any]:
    """Write the bundle under `out`; what was written, as a JSON-ready dict."""
    _write_case(failing, out)
    tolerance = {name: [s["atol"], s["rtol"]] for name, s in failing.stats.items()}
    config = {"provider": cell.backend.get("provider") or "CPUExecutionProvider",
              "provider_options": cell.backend.get("provider_options") or {},
              "graph_optimization": cell.backend.get("graph_optimization") or "all",
              "n_inputs": len(failing.inputs), "n_outputs": len(failing.expected), "tolerance": tolerance,
              "expected_code": target, "cell": cell.label, "against": against.label}
    write_text(out / "repro.json", json.dumps(config, indent=2))
    write_text(out / "repro.py", SCRIPT)
    write_text(out / "requirements.lock", "".join(f"{k}=={v}\n" for k, v in sorted(cell.lock.items())))
    if passing is not None and passing.model is not None:
        _write_case(passing, out / "passing")
    doc = {"out": str(out), "nodes": failing.nodes, "code": failing.code, "stats": failing.stats,
           "passing_nodes": passing.nodes if passing is not None else None,
           "passing_stats": passing.stats if passing is not None else None, **extra}
    write_text(out / "reduce.json", json.dumps(doc, indent=2, default=str))
    return doc
