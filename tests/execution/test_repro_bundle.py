"""The repro bundle: ONNX test-case layout, and a script that reads its .pb files without the onnx package."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from onnx import TensorProto, helper

from modelcompat.execution.localise import Side
from modelcompat.execution.reduce import Case
from modelcompat.execution.repro_bundle import write_bundle


def _case(expected_scale: float) -> Case:
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"], name="mul")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 3]),
                               helper.make_tensor_value_info("k", TensorProto.INT64, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2, 3])])
    graph.node[0].CopyFrom(helper.make_node("Mul", ["x", "kf"], ["y"], name="mul"))
    graph.node.insert(0, helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT16, name="cast"))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = np.arange(6, dtype=np.float16).reshape(2, 3)
    k = np.array([1, 2, 3], np.int64)
    stats = {"y": {"atol": 1e-3, "rtol": 0.0, "diverged": expected_scale != 1.0}}
    return Case(["cast", "mul"], model, {"x": x, "k": k}, {"y": (x * k * expected_scale).astype(np.float16)}, stats,
                "numerical_parity.tolerance_exceeded")


def _side() -> Side:
    return Side("host-ort/cpu/ort-cpu", sys.executable, {"provider": "CPUExecutionProvider"}, None, "fp32",
                {"onnxruntime": "1.0", "numpy": "2.0"})


def test_the_script_passes_when_the_runtime_matches_and_fails_when_not(tmp_path):
    for scale, code in ((1.0, 0), (1.5, 1)):
        out = tmp_path / f"bundle-{scale}"
        doc = write_bundle(out, _case(scale), _case(1.0), _side(), _side(), "numerical_parity.tolerance_exceeded", {})
        names = sorted(p.name for p in (out / "test_data_set_0").iterdir())
        assert names == ["input_0.pb", "input_1.pb", "output_0.pb"]
        assert (out / "passing" / "model.onnx").is_file() and doc["passing_nodes"] == ["cast", "mul"]
        assert json.loads((out / "repro.json").read_text())["tolerance"] == {"y": [1e-3, 0.0]}
        assert (out / "requirements.lock").read_text() == "numpy==2.0\nonnxruntime==1.0\n"
        # onnx is installed here: make importing it fail, so the script shows it reads the .pb files itself
        proc = subprocess.run([sys.executable, "-c", "import runpy, sys; sys.modules['onnx'] = None; "
                               f"runpy.run_path({str(out / 'repro.py')!r}, run_name='__main__')"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert ("FAIL numerical_parity.tolerance_exceeded" in proc.stdout) == bool(code)
