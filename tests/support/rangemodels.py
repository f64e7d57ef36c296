"""Real model packages whose onnxruntime compatibility window is known, built in code with onnx.helper.

- `opset21_package`: Add at ai.onnx opset 21, IR 10. onnxruntime 1.16 (opset <= 19) and 1.17 (<= 20, IR <= 9)
  refuse to load it; 1.18 and later load it.
- `gelu_package`: Gelu, an op that exists from ai.onnx opset 20, at opset 20 / IR 9: 1.16 refuses the opset,
  1.17 and later run it.
- `deform_conv_package`: DeformConv at opset 19 / IR 9, an opset every release from 1.16 accepts, but a kernel
  only newer releases have (1.19 has none: "Could not find an implementation for DeformConv(19)").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from modelcompat.model.build import build_package
from modelcompat.model.package import ModelPackage


def _package(model: onnx.ModelProto, out: Path, name: str, n_inputs: int,
             shapes: dict[str, tuple[int, ...]] | None = None) -> ModelPackage:
    work = out.parent / f".{out.name}-src"
    work.mkdir(parents=True, exist_ok=True)
    onnx.save(model, work / "model.onnx")
    rng = np.random.default_rng(0)
    shapes = shapes or {n: (2, 8) for n in ["x", "y"][:n_inputs]}
    np.savez(work / "payload.npz", **{n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()})
    return build_package([work / "model.onnx"], work / "payload.npz", out, name=name, version="1")


def opset21_package(out: Path, name: str = "add21") -> ModelPackage:
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "add21",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 8]) for n in "xy"],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 8])])
    return _package(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10),
                    out, name, 2)


def gelu_package(out: Path, name: str = "gelu20") -> ModelPackage:
    graph = helper.make_graph([helper.make_node("Gelu", ["x"], ["z"])], "gelu20",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 8])])
    return _package(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=9),
                    out, name, 1)


def deform_conv_package(out: Path, name: str = "deformconv19") -> ModelPackage:
    shapes = {"x": (1, 1, 4, 4), "w": (1, 1, 2, 2), "offset": (1, 8, 3, 3)}
    graph = helper.make_graph([helper.make_node("DeformConv", list(shapes), ["z"])], "deformconv19",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in shapes.items()],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1, 3, 3])])
    return _package(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9),
                    out, name, 3, shapes)
