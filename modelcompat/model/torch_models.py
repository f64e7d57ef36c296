"""Tiny torch models and exporters shared by the demo and the tests (to make broken variants on purpose).

Importing this module imports torch: keep it out of code paths that do not build models.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

N_FEATURES = 16
N_HIDDEN = 32
N_CLASSES = 4


class MLPClassifier(torch.nn.Module):
    """16 features -> 32 (ReLU) -> 4 classes, softmax probabilities."""

    def __init__(self, n_features: int = N_FEATURES, n_hidden: int = N_HIDDEN, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(n_features, n_hidden)
        self.out = torch.nn.Linear(n_hidden, n_classes)

    # The argument name becomes the pt2 program's input name: keep it equal to the ONNX input name.
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.out(torch.relu(self.hidden(features))), dim=-1)


def make_mlp(seed: int = 0) -> MLPClassifier:
    """The MLP with weights fixed by `seed`, in eval mode."""
    torch.manual_seed(seed)
    return MLPClassifier().eval()


def make_features(n_rows: int = 8, seed: int = 0, n_features: int = N_FEATURES,
                  dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Seeded standard-normal feature rows."""
    return np.random.default_rng(seed).standard_normal((n_rows, n_features)).astype(dtype)


def save_payload(path: Path, **arrays: np.ndarray) -> Path:
    """An `.npz` keyed by tensor name (what `payload` and `reference` files are)."""
    np.savez(path, **arrays)
    return path


def eager_outputs(module: torch.nn.Module, *inputs: np.ndarray) -> list[np.ndarray]:
    """The module's outputs in this process (tests only: modelcompat itself runs models in the probe)."""
    with torch.no_grad():
        result = module(*(torch.from_numpy(np.asarray(x)) for x in inputs))
    results = result if isinstance(result, (tuple, list)) else (result,)
    return [r.detach().numpy() for r in results]


def export_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, ...] | torch.Tensor, path: Path, *,
                opset: int = 17, input_names: Sequence[str] = ("features",),
                output_names: Sequence[str] = ("probabilities",),
                dynamic_axes: Mapping[str, Mapping[int, str]] | None | bool = True) -> Path:
    """ONNX via the legacy (TorchScript-based) exporter: loads on old onnxruntime at opset <= 17.

    `dynamic_axes=True` makes axis 0 of every input and output the symbolic dim `batch`.
    """
    example = example if isinstance(example, tuple) else (example,)
    if dynamic_axes is True:
        dynamic_axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice: chosen on purpose
        torch.onnx.export(module, example, str(path), dynamo=False, opset_version=opset,
                          input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dict(dynamic_axes) if dynamic_axes else None)
    return path


def export_torchscript(module: torch.nn.Module, example: tuple[torch.Tensor, ...] | torch.Tensor, path: Path) -> Path:
    """TorchScript by tracing, saved as a zip archive."""
    example = example if isinstance(example, tuple) else (example,)
    with torch.no_grad():
        traced = torch.jit.trace(module, example)
    traced.save(str(path))
    return path


def export_pt2(module: torch.nn.Module, example: tuple[torch.Tensor, ...] | torch.Tensor, path: Path, *,
               dynamic_batch: bool = True) -> Path:
    """torch.export program (.pt2) with axis 0 of every input dynamic (`batch`) when asked."""
    example = example if isinstance(example, tuple) else (example,)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=65536)
        dynamic_shapes = tuple({0: batch} for _ in example)
    program = torch.export.export(module, example, dynamic_shapes=dynamic_shapes)
    torch.export.save(program, str(path))
    return path
