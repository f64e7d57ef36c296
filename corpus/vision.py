"""Vision models as torchvision/timm users export them: torch.onnx.export(dynamo=True), TorchScript, .pt2."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from corpus.registry import onnx_facts, recipe, save_payload

SEED = 0
IMAGE = (3, 224, 224)


def _images(batch: int = 2) -> torch.Tensor:
    # Batch 2, not 1: torch.export specialises a size-1 dimension, so a dynamic batch needs an example > 1.
    return torch.randn(batch, *IMAGE, generator=torch.Generator().manual_seed(SEED + 1))


def _dynamo_onnx(model: torch.nn.Module, out: Path, x: torch.Tensor) -> dict:
    """The default exporter of torch 2.14, batch made dynamic the documented way; writes model.onnx(.data)."""
    torch.onnx.export(model, (x,), str(out / "model.onnx"), dynamo=True,
                      dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    save_payload(out, {"x": x.numpy()})
    facts = onnx_facts(out / "model.onnx")
    return {"exporter": {"tool": "torch.onnx.export", "options": {"dynamo": True,
                                                                "dynamic_shapes": {"x": {"0": "batch"}}}},
            **facts, "outputs_meaning": {facts["outputs"][0]: "logits"}}


def _torchvision(name: str) -> torch.nn.Module:
    import torchvision

    torch.manual_seed(SEED)
    return getattr(torchvision.models, name)(weights=None).eval()


@recipe("resnet18", "torchvision resnet18, ONNX (dynamo, external data, dynamic batch)")
def resnet18(out: Path, deps: dict[str, Path]) -> dict:
    return _dynamo_onnx(_torchvision("resnet18"), out, _images())


@recipe("mobilenet_v3_small", "torchvision mobilenet_v3_small, ONNX (dynamo, external data, dynamic batch)")
def mobilenet_v3_small(out: Path, deps: dict[str, Path]) -> dict:
    return _dynamo_onnx(_torchvision("mobilenet_v3_small"), out, _images())


@recipe("resnet18_torch", "torchvision resnet18 as TorchScript (jit.trace) and torch.export .pt2")
def resnet18_torch(out: Path, deps: dict[str, Path]) -> dict:
    model, x = _torchvision("resnet18"), _images()
    with torch.no_grad():
        torch.jit.trace(model, (x,)).save(str(out / "model.torchscript.pt"))
    torch.export.save(torch.export.export(model, (x,)), str(out / "model.pt2"))
    save_payload(out, {"x": x.numpy()})
    return {"exporter": {"tool": "torch.jit.trace(...).save + torch.export.save(torch.export.export(...))",
                         "options": {}},
            "saved_by": {"torch": torch.__version__},  # both formats are read back only by a compatible torch
            "outputs_meaning": {"output": "logits"}}


@recipe("mobilenet_v3_small_pt2", "torchvision mobilenet_v3_small as a torch.export .pt2 (dynamic batch up to 64): "
        "what an edge runtime (ExecuTorch) lowers")
def mobilenet_v3_small_pt2(out: Path, deps: dict[str, Path]) -> dict:
    model, x = _torchvision("mobilenet_v3_small"), _images()
    # A bounded batch: ExecuTorch plans memory for a dynamic dim's upper bound.
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes={"x": {0: batch}}), str(out / "model.pt2"))
    save_payload(out, {"x": x.numpy()})
    return {"exporter": {"tool": "torch.export.save(torch.export.export(...))",
                         "options": {"dynamic_shapes": {"x": {"0": "batch<=64"}}}},
            "saved_by": {"torch": torch.__version__}, "outputs_meaning": {"output": "logits"}}


@recipe("vit_tiny", "timm vit_tiny_patch16_224 (pretrained=False), ONNX (dynamo, external data, dynamic batch)")
def vit_tiny(out: Path, deps: dict[str, Path]) -> dict:
    import timm

    torch.manual_seed(SEED)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    return _dynamo_onnx(model, out, _images())


def image_batch(batch: int, seed: int) -> np.ndarray:
    """Random float32 images, as a calibration reader feeds them."""
    return np.random.default_rng(seed).standard_normal((batch, *IMAGE), dtype=np.float32)
