"""Real tiny models that misbehave on purpose, as edits for `pkgvariants.variant(...)`.

Each `with_*` returns an edit `(folder, manifest) -> None` that swaps one artifact of a copy of the demo
package for a model with the defect, and fixes the manifest (hashes, contract, reference) around it.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from support.pkgvariants import rehash

Edit = Callable[[Path, dict[str, Any]], None]


def _features(folder: Path) -> np.ndarray:
    with np.load(folder / "payload.npz") as npz:
        return npz["features"]


def _set_output(manifest: dict[str, Any], width: int, semantics: str) -> None:
    out = manifest["contract"]["outputs"][0]
    out["shape"], out["semantics"] = ["batch", width], semantics


def with_onnx_graph(nodes: list[Any], width: int, semantics: str, initializers: list[Any] = ()) -> Edit:
    """Replace the ONNX artifact with `features[batch,16] -> nodes -> probabilities[batch,width]`."""
    def edit(folder: Path, manifest: dict[str, Any]) -> None:
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
            [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", width])],
            initializer=list(initializers))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        onnx.checker.check_model(model)
        onnx.save(model, folder / "model.onnx")
        _set_output(manifest, width, semantics)
        manifest.pop("reference", None)
        rehash(folder, manifest)
    return edit


class _Noisy(torch.nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(features + torch.rand_like(features) * self.scale, dim=-1)


def with_noisy_torchscript(scale: float) -> Edit:
    """TorchScript (scripted, so the sampling op stays in the graph) adding uniform noise × `scale`."""
    def edit(folder: Path, manifest: dict[str, Any]) -> None:
        torch.jit.script(_Noisy(scale)).save(str(folder / "model.torchscript.pt"))
        _set_output(manifest, 16, "probabilities")
        manifest.pop("reference", None)
        rehash(folder, manifest)
    return edit


class _Squares(torch.nn.Module):
    """(400 x)^2 / 1e5: the intermediate reaches ~1e6 for |x| ≈ 2.5, past fp16's 65504; the output stays small."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features * 400.0) ** 2 / 1e5


def with_fp16_overflow(folder: Path, manifest: dict[str, Any]) -> None:
    """pt2 + TorchScript artifacts of `_Squares`, with fp32 reference outputs computed here."""
    module = _Squares().eval()
    x = torch.from_numpy(_features(folder))
    assert float(((x * 400.0) ** 2).max()) > 65504, "the payload must drive the intermediate past fp16's range"
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.export.save(torch.export.export(module, (x,), dynamic_shapes=({0: batch},)), str(folder / "model.pt2"))
    torch.jit.trace(module, (x,)).save(str(folder / "model.torchscript.pt"))
    with torch.no_grad():
        reference = module(x).numpy()
    assert np.all(np.isfinite(reference))
    np.savez(folder / "reference.npz", probabilities=reference)
    manifest["reference"] = "reference.npz"
    _set_output(manifest, 16, "regression")
    rehash(folder, manifest)


def nodes_log() -> list[Any]:
    """log(features): NaN for every negative feature."""
    return [helper.make_node("Log", ["features"], ["probabilities"])]


def nodes_div_by_zero() -> list[Any]:
    """features / (features - features): ±Inf everywhere (no feature is exactly 0)."""
    return [helper.make_node("Sub", ["features", "features"], ["zero"]),
            helper.make_node("Div", ["features", "zero"], ["probabilities"])]


def nodes_sigmoid() -> list[Any]:
    """sigmoid(features): each value in (0, 1), but rows of 16 sum to ~8, not 1."""
    return [helper.make_node("Sigmoid", ["features"], ["probabilities"])]


def nodes_random_noise() -> list[Any]:
    """softmax(features + U(0,1)): RandomUniformLike without a seed draws new numbers every run."""
    return [helper.make_node("RandomUniformLike", ["features"], ["noise"]),
            helper.make_node("Add", ["features", "noise"], ["noisy"]),
            helper.make_node("Softmax", ["noisy"], ["probabilities"], axis=-1)]


def with_payload_value(value: float) -> Edit:
    """Put `value` (e.g. NaN) in the payload's first feature of the first row."""
    def edit(folder: Path, manifest: dict[str, Any]) -> None:
        features = _features(folder).copy()
        features[0, 0] = value
        np.savez(folder / "payload.npz", features=features)
    return edit


def with_payload_dtype(dtype: str) -> Edit:
    """Store the payload's features in another dtype than the contract's."""
    def edit(folder: Path, manifest: dict[str, Any]) -> None:
        np.savez(folder / "payload.npz", features=_features(folder).astype(dtype))
    return edit
