"""Tiny real ONNX models as package variants: the demo package with its ONNX artifact replaced."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from modelcompat.model.package import ModelPackage
from support.pkgvariants import rehash, variant


def one_node(op: str, dtype: int, *, n_inputs: int = 1, opset: int = 17, ir_version: int = 8,
             extra_opsets: dict[str, int] | None = None, node_name: str | None = None) -> onnx.ModelProto:
    """`op` over `n_inputs` inputs of `dtype` shaped [batch, 16], one output `probabilities`."""
    names = ["features"] + [f"features_{i}" for i in range(1, n_inputs)]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["probabilities"], name=node_name or f"{op.lower()}_node")], "tiny",
        [helper.make_tensor_value_info(n, dtype, ["batch", 16]) for n in names],
        [helper.make_tensor_value_info("probabilities", dtype, ["batch", 16])])
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    return helper.make_model(graph, opset_imports=opsets, ir_version=ir_version)


def onnx_package(demo: ModelPackage, dest: Path, model: onnx.ModelProto,
                 requirements: list[str] | None = None) -> ModelPackage:
    """The demo package with `model` as its ONNX artifact, a matching contract and payload, no reference."""
    def edit(folder: Path, manifest: dict) -> None:
        onnx.save(model, folder / "model.onnx")
        rng = np.random.default_rng(0)
        payload, inputs = {}, []
        for vi in model.graph.input:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
            payload[vi.name] = (rng.standard_normal((2, 16)) * 3).astype(dtype)
            inputs.append({"name": vi.name, "dtype": dtype.name, "shape": ["batch", 16]})
        np.savez(folder / manifest["payload"], **payload)
        manifest["contract"]["inputs"] = inputs
        out = model.graph.output[0]
        manifest["contract"]["outputs"] = [{"name": out.name, "shape": ["batch", 16], "dtype": np.dtype(
            helper.tensor_dtype_to_np_dtype(out.type.tensor_type.elem_type)).name}]
        manifest.pop("reference", None)
        if requirements is not None:
            manifest["requirements"] = requirements
        rehash(folder, manifest)
    return variant(demo, dest, edit)


DOUBLE, INT8, FLOAT = TensorProto.DOUBLE, TensorProto.INT8, TensorProto.FLOAT
