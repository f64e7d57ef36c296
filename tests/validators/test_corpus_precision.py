"""The corpus's fp32 ResNet-18 (dynamo export, external data), packaged with its output declared `logits`, on the
host onnxruntime's fp16 backend cell (the nightly matrix's ort-cpu-fp16: the package converted on the host, float32
I/O kept): the drift stays within fp16's tolerance and past fp32's, and the predictions of 16 images agree.

Random-weight ResNet-18 ranks one class first for any input (class 238 here), so top-1 agreement is a per-row
check that this class still wins by a margin (≥ 0.3 in the reference) that the fp16 drift (< 0.01) cannot close.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from modelcompat.matrix.cells import BackendSpec
from modelcompat.model.package import load_package
from support.corpus_packages import images, package, set_tolerance
from support.extdata import corpus_model
from support.pkgvariants import HOST_ORT
from support.validator_runs import codes, run

ORT_FP16 = HOST_ORT.model_copy(update={"backend": BackendSpec(
    id="ort-cpu-fp16", runtime="onnxruntime", provider="CPUExecutionProvider", precision="fp16")})
IMAGES = 16


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory):
    """The fp32 resnet18 packaged with 16 images, output `linear` declared logits; reference on the host."""
    root = tmp_path_factory.mktemp("resnet")
    model = corpus_model("resnet18", root / "corpus") / "model.onnx"
    np.savez(root / "images.npz", x=images(IMAGES))
    pkg, summary = package(model, root / "images.npz", root / "pkg", "resnet18", semantics={"linear": "logits"})
    return pkg, summary


def test_the_package_takes_the_external_weights_and_the_declared_semantics(resnet) -> None:
    pkg, summary = resnet
    (artifact,) = pkg.manifest.artifacts
    assert [f.path for f in artifact.data_files] == ["model.onnx.data"]
    assert summary.endswith("with 1 external data file (46.7 MB)"), summary
    assert [(t.name, t.semantics) for t in pkg.manifest.contract.outputs] == [("linear", "logits")]


def test_fp16_cell_drifts_past_fp32_within_fp16_and_predictions_agree(resnet) -> None:
    pkg, _ = resnet
    report = run(pkg, ORT_FP16, ("loadability", "numerical_parity"))["numerical_parity"]
    assert report.status.value == "pass", report.findings
    m = report.metrics
    assert 1e-4 < m["max_abs_diff"] < 1e-2  # past fp32's atol 1e-5, within fp16's 1e-2: the fp16 graph ran
    assert m["top1_agreement"] == 1.0 and m["topk_agreement"] == 1.0  # figures are reported on a pass too


def test_fp16_cell_held_to_fp32_tolerance_warns_with_the_figures(resnet, tmp_path: Path) -> None:
    """A manifest that holds `linear` to fp32's tolerance (per output: taken as written at every precision):
    the fp16 cell exceeds it, its 16 predictions agree, so the grade is a warning naming the figures."""
    pkg, _ = resnet
    strict = set_tolerance(load_package(shutil.copytree(pkg.root, tmp_path / "pkg")), "linear", 1e-5, 1e-4)
    fp16 = run(strict, ORT_FP16, ("numerical_parity",))["numerical_parity"]
    assert fp16.status.value == "warn", fp16.findings
    assert codes(fp16) == {"numerical_parity.predictions_agree"}  # tolerance_exceeded graded down, not kept
    (finding,) = fp16.findings
    assert "top-1 agreement 100.0%, top-5 agreement 100.0%" in finding.message
    assert fp16.metrics["top1_agreement"] == 1.0 and fp16.metrics["max_abs_diff"] > 1e-4
    assert fp16.metrics["min_passing_atol"] > 1e-5  # what would have passed is still reported
    fp32 = run(strict, HOST_ORT, ("numerical_parity",))["numerical_parity"]  # the same runtime at fp32: exact
    assert fp32.status.value == "pass" and fp32.metrics["max_abs_diff"] < 1e-5, fp32.findings

