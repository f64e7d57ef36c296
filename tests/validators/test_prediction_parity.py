"""Prediction-level parity on real models: the corpus's fp16 ResNet-18 and static-QDQ int8 MobileNetV3 artifacts,
each packaged with its fp32 model's reference outputs (`modelcompat package --reference`, output declared `logits`),
through the real harness on the host onnxruntime. Drift with agreeing predictions is a `warn` with the figures;
predictions that really change are a `fail`, never graded down.

What the random weights give (16 images each): ResNet-18 ranks class 238 first for any input (margin ≥ 0.3), so
its agreement is per-row; MobileNetV3's logits are ~1e-9, below fp32's default atol 1e-5, so it is held to the
relative tolerance alone (atol 0). Its int8 copy was calibrated on standard-normal images: on them its predictions
agree; on images whose channels are shifted (out of the calibration range) they really change.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from modelcompat.model.hashing import sha256_file
from modelcompat.model.package import load_package
from modelcompat.model.values import load_values, save_values
from support.corpus_packages import images, package, set_tolerance
from support.extdata import corpus_model
from support.pkgvariants import HOST_ORT
from support.validator_runs import codes, run

IMAGES = 16
FP32_TOLERANCE = (1e-5, 1e-4)  # the manifest defaults (atol, rtol)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prediction-parity")


_REFERENCES: dict[tuple[Path, str], dict[str, np.ndarray]] = {}  # (model, payload sha256): one package each


def _reference_of(fp32_model: Path, payload: Path, out: Path, output: str) -> dict[str, np.ndarray]:
    """The fp32 model's outputs on `payload`, computed by `modelcompat package` on the host runtime."""
    key = (fp32_model, sha256_file(payload))
    if key not in _REFERENCES:
        pkg, _ = package(fp32_model, payload, out, out.name, semantics={output: "logits"})
        _REFERENCES[key] = load_values(pkg.resolve(pkg.manifest.reference))
    return _REFERENCES[key]


def _quantized_package(root: Path, name: str, fp32: str, quantized: Path, x: np.ndarray, output: str, *,
                       io_dtype: type = np.float32):
    """`quantized` packaged with payload `x` and the fp32 corpus model's reference on it (at the I/O dtype)."""
    folder = root / name
    folder.mkdir()
    np.savez(folder / "fp32-payload.npz", x=x)
    reference = _reference_of(corpus_model(fp32, root / "corpus") / "model.onnx", folder / "fp32-payload.npz",
                              folder / "fp32", output)
    np.savez(folder / "payload.npz", x=x.astype(io_dtype))
    save_values(folder / "reference.npz", {output: reference[output].astype(io_dtype)})
    pkg, _ = package(quantized, folder / "payload.npz", folder / "pkg", name, reference=folder / "reference.npz",
                     semantics={output: "logits"})
    return pkg


@pytest.fixture(scope="module")
def resnet_fp16(root: Path):
    model = corpus_model("resnet18_fp16", root / "corpus") / "model.onnx"
    return _quantized_package(root, "resnet18_fp16", "resnet18", model, images(IMAGES), "linear", io_dtype=np.float16)


def _mobilenet_int8(root: Path, name: str, x: np.ndarray):
    model = corpus_model("mobilenet_int8_qdq", root / "corpus") / "model.onnx"
    pkg = _quantized_package(root, name, "mobilenet_v3_small", model, x, "linear_1")
    return set_tolerance(pkg, "linear_1", 0.0, FP32_TOLERANCE[1])


def _parity(pkg) -> object:
    return run(pkg, HOST_ORT, ("integrity", "loadability", "numerical_parity"))


def test_fp16_resnet_against_the_fp32_reference_drifts_and_its_predictions_agree(resnet_fp16, tmp_path) -> None:
    at_fp16 = _parity(resnet_fp16)
    assert {v: r.status.value for v, r in at_fp16.items()} == {"integrity": "pass", "loadability": "pass",
                                                               "numerical_parity": "pass"}
    m = at_fp16["numerical_parity"].metrics
    assert 1e-4 < m["max_abs_diff"] < 1e-2 and m["top1_agreement"] == 1.0  # float16 output: fp16's tolerance

    strict = set_tolerance(load_package(shutil.copytree(resnet_fp16.root, tmp_path / "pkg")), "linear",
                           *FP32_TOLERANCE)
    report = _parity(strict)["numerical_parity"]
    assert report.status.value == "warn", report.findings
    assert codes(report) == {"numerical_parity.predictions_agree"}
    assert "top-1 agreement 100.0%, top-5 agreement 100.0%" in report.findings[0].message
    assert report.metrics["top1_agreement"] == 1.0 and report.metrics["max_abs_diff"] > FP32_TOLERANCE[0]


def test_int8_mobilenet_on_its_calibration_distribution_drifts_and_its_predictions_agree(root: Path) -> None:
    pkg = _mobilenet_int8(root, "int8-in-range", images(IMAGES, seed=0))
    report = _parity(pkg)["numerical_parity"]
    assert report.status.value == "warn", report.findings
    assert codes(report) == {"numerical_parity.predictions_agree"}
    m = report.metrics
    assert m["top1_agreement"] == 1.0 and m["topk_agreement"] == 1.0
    assert m["max_rel_diff"] > 1.0  # far past rtol 1e-4: int8 drift, graded on what it predicts


def test_int8_mobilenet_out_of_its_calibration_range_changes_predictions(root: Path) -> None:
    """A real miss, not a constructed one: shifted channels leave the calibrated int8 ranges."""
    pkg = _mobilenet_int8(root, "int8-out-of-range", images(IMAGES, seed=0, channel_offset=3.0))
    reference = load_values(pkg.resolve(pkg.manifest.reference))["linear_1"]
    assert len(set(np.argmax(reference, axis=1))) >= 3  # the reference ranks several classes first
    report = _parity(pkg)["numerical_parity"]
    assert report.status.value == "fail", report.findings
    assert codes(report) == {"numerical_parity.tolerance_exceeded", "numerical_parity.predictions_changed"}
    m = report.metrics
    assert m["top1_agreement"] < 0.9  # several of 16 rows change class
    changed = next(f for f in report.findings if f.code == "numerical_parity.predictions_changed")
    assert f"top-1 agreement {m['top1_agreement']:.1%}" in changed.message and changed.expected == "top-1 agreement ≥ 99%"


def test_a_corrupted_final_layer_changes_predictions_and_is_never_graded_down(root: Path, tmp_path: Path) -> None:
    """The fp16 ResNet with 3 classes' final-layer biases raised by 20: every image now predicts one of them.
    At fp16's default tolerance the miss is a fail with both findings: the tolerance one is not graded away."""
    model = onnx.load(str(corpus_model("resnet18_fp16", root / "corpus") / "model.onnx"))
    (bias,) = [t for t in model.graph.initializer if tuple(t.dims) == (1000,)]
    values = numpy_helper.to_array(bias).copy()
    values[[7, 70, 700]] += 20
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(model, str(tmp_path / "model.onnx"))
    x = images(IMAGES)
    pkg = _quantized_package(tmp_path, "resnet18_fp16_corrupt", "resnet18", tmp_path / "model.onnx", x, "linear",
                             io_dtype=np.float16)
    report = _parity(pkg)["numerical_parity"]
    assert report.status.value == "fail", report.findings
    assert codes(report) == {"numerical_parity.tolerance_exceeded", "numerical_parity.predictions_changed"}
    assert report.metrics["top1_agreement"] == 0.0  # every image changed class ...
    assert report.metrics["topk_agreement"] == 1.0  # ... to a boosted one: the reference's class is still 4th
    changed = next(f for f in report.findings if f.code == "numerical_parity.predictions_changed")
    assert "top-1 agreement 0.0%, top-5 agreement 100.0%" in changed.message
