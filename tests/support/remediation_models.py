"""Models for the remediation tests, built in code with onnx.helper, packaged, and a matrix of real onnxruntime
releases (1.16, 1.17, 1.18 as uv venvs, and the host's newest)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from modelcompat.model.build import build_package
from modelcompat.model.package import ModelPackage

RELEASES = {"ort-1.16": "1.16.3", "ort-1.17": "1.17.3", "ort-1.18": "1.18.1"}
CHECKS = ["loadability", "opset_support", "numerical_parity"]


def conv_model(opset: int, ir: int, *, activation: str = "Relu") -> onnx.ModelProto:
    """Conv -> `activation` -> Flatten -> Gemm on x[batch, 3, 8, 8], y[batch, 4]; weights fixed by a seed."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((72, 4)).astype(np.float32), "g"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "gb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]),
             helper.make_node(activation, ["c"], ["a"]),
             helper.make_node("Flatten", ["a"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "g", "gb"], ["y"])]
    graph = helper.make_graph(nodes, "convnet",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
    onnx.checker.check_model(model, full_check=True)
    return model


def package(model: onnx.ModelProto, dest: Path, *, name: str = "convnet", atol: float = 1e-5) -> ModelPackage:
    """`model` packaged with a payload of batch 2; its reference computed on the host's onnxruntime."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = dest.parent / f"{dest.name}-src"
    src.mkdir(exist_ok=True)
    onnx.save(model, src / "model.onnx")
    np.savez(src / "payload.npz", x=np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32))
    return build_package([src / "model.onnx"], src / "payload.npz", dest, name=name, version="1.0",
                         tolerances={"atol": atol, "rtol": 1e-4})


def matrix(dest: Path) -> Path:
    """The host's onnxruntime and onnxruntime 1.16, 1.17, 1.18 in venvs; CPU only."""
    runtimes = ["  - {id: host-ort, kind: onnxruntime, env: host}"]
    runtimes += [f'  - {{id: {rid}, kind: onnxruntime, env: venv, requirements: ["onnxruntime=={v}", "numpy<2"]}}'
                 for rid, v in RELEASES.items()]
    dest.write_text("name: remediation-test\nruntimes:\n" + "\n".join(runtimes) + "\n"
                    "hardware:\n  - {id: cpu, kind: cpu}\n"
                    "backends:\n  - {id: ort-cpu, runtime: onnxruntime, provider: CPUExecutionProvider}\n")
    return dest
