"""Derived models as their users make them: onnxruntime quantize_dynamic / quantize_static (QDQ) and
onnxconverter-common fp16, each with default options, applied to other corpus models' ONNX files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from corpus.registry import onnx_facts, recipe, save_payload
from corpus.vision import image_batch

CALIBRATION_BATCHES = 8


def _derived(src: Path, out: Path, tool: str, options: dict) -> dict:
    """Copy the source's payload and output meanings: a derived model answers the same question."""
    import json

    payload = dict(np.load(src / "inputs.npz", allow_pickle=False))
    source = json.loads((src / "recipe.json").read_text())
    return {"payload": payload, "source": {"name": source["name"], "key": source["key"]},
            "exporter": {"tool": tool, "options": options}, "source_meaning": source["outputs_meaning"]}


def _finish(out: Path, info: dict, payload: dict[str, np.ndarray]) -> dict:
    save_payload(out, payload)
    facts = onnx_facts(out / "model.onnx")
    meaning = info.pop("source_meaning")
    return {**info, **facts, "outputs_meaning": {o: meaning.get(o, "raw") for o in facts["outputs"]}}


@recipe("bert_int8_dynamic", "onnxruntime quantize_dynamic of the bert model (default options)", ("bert",))
def bert_int8_dynamic(out: Path, deps: dict[str, Path]) -> dict:
    from onnxruntime.quantization import quantize_dynamic

    src = deps["bert"]
    info = _derived(src, out, "onnxruntime.quantization.quantize_dynamic(model_input, model_output)", {})
    quantize_dynamic(src / "model.onnx", out / "model.onnx")
    return _finish(out, info, info.pop("payload"))


class _RandomImages:
    """A CalibrationDataReader over a few seeded random image batches."""

    def __init__(self, input_name: str) -> None:
        self._batches = iter([{input_name: image_batch(1, seed)} for seed in range(CALIBRATION_BATCHES)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


@recipe("mobilenet_int8_qdq", "onnxruntime quantize_static (QDQ, random calibration) of mobilenet_v3_small",
        ("mobilenet_v3_small",))
def mobilenet_int8_qdq(out: Path, deps: dict[str, Path]) -> dict:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    CalibrationDataReader.register(_RandomImages)
    src = deps["mobilenet_v3_small"]
    info = _derived(src, out, "onnxruntime.quantization.quantize_static(model_input, model_output, reader)",
                    {"calibration": f"{CALIBRATION_BATCHES} seeded random 1x3x224x224 float32 batches",
                     "quant_format_default": str(QuantFormat.QDQ)})
    name = onnx_facts(src / "model.onnx")["inputs"][0]
    quantize_static(src / "model.onnx", out / "model.onnx", _RandomImages(name))
    return _finish(out, info, info.pop("payload"))


@recipe("resnet18_fp16", "onnxconverter-common float16.convert_float_to_float16 of resnet18 (keep_io_types=False)",
        ("resnet18",))
def resnet18_fp16(out: Path, deps: dict[str, Path]) -> dict:
    import onnx
    from onnxconverter_common import float16

    src = deps["resnet18"]
    info = _derived(src, out, "onnxconverter_common.float16.convert_float_to_float16(onnx.load(path))", {})
    onnx.save(float16.convert_float_to_float16(onnx.load(str(src / "model.onnx"))), str(out / "model.onnx"))
    payload = {k: v.astype(np.float16) for k, v in info.pop("payload").items()}  # fp16 io: the inputs are fp16 too
    return _finish(out, info, payload)
