"""environment_parity on provenance: an artifact saved by a newer framework than the cell runs is flagged, in real
cells (the host's torch and onnxruntime, and an onnxruntime 1.16.3 venv); what the file says is read from the file."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.model.package import ModelPackage
from support.pkgvariants import HOST_ORT, ORT_116, TORCH_EAGER, rehash, variant
from support.provenance_edits import set_onnx_producer, set_pt2_torch_version

CODE = "environment_parity.artifact_newer_than_runtime"


def run(package: ModelPackage, cell):
    job = CellJob(cell=cell, package_root=str(package.root), validators=("environment_parity",), run_id="t")
    return check_cell(job)[0]


def _edit(pt2_torch: str | None = None, producer: tuple[str, str] | None = None, lineage: list | None = None):
    def edit(folder: Path, manifest: dict) -> None:
        if pt2_torch:
            set_pt2_torch_version(folder / "model.pt2", pt2_torch)
        if producer:
            set_onnx_producer(folder / "model.onnx", *producer)
        if lineage is not None:
            manifest["provenance"] = {"lineage": lineage}
        rehash(folder, manifest)
    return edit


def test_a_pt2_saved_by_a_newer_torch_is_flagged_on_the_cell(demo_package, tmp_path):
    import torch

    package = variant(demo_package, tmp_path / "pkg", _edit(pt2_torch="2.99.0"))
    report = run(package, TORCH_EAGER)
    assert report.status.value == "warn", report.findings
    (finding,) = [f for f in report.findings if f.code == CODE]
    assert finding.observed == "torch 2.99.0" and finding.expected == f"<= torch {torch.__version__}"
    assert "model.pt2 was saved by torch 2.99.0" in finding.message and "host-torch" in finding.message
    assert "torch >= 2.99" in finding.remediation


def test_the_demo_as_saved_is_not_flagged(demo_package):
    # The same check on the untouched archive (saved by this torch): the edit above is what made the finding.
    for cell in (TORCH_EAGER, HOST_ORT):
        report = run(demo_package, cell)
        assert report.status.value == "pass" and not report.findings


def test_a_patch_release_newer_is_not_flagged(demo_package, tmp_path):
    import torch

    major, minor = torch.__version__.split(".")[:2]
    package = variant(demo_package, tmp_path / "pkg", _edit(pt2_torch=f"{major}.{minor}.99"))
    assert not run(package, TORCH_EAGER).findings


@pytest.mark.parametrize(("producer", "cell", "flagged"), [
    (("onnxruntime.quant", "1.17.1"), ORT_116, True),     # quantized by a newer onnxruntime than 1.16.3
    (("onnxruntime.quant", "1.16.0"), ORT_116, False),
    (("onnxruntime.transformers", "1.99.0"), HOST_ORT, True),
    (("pytorch", "9.0.0"), ORT_116, False),  # a torch-exported model: not comparable with onnxruntime releases
], ids=["ort-quant-1.17@1.16", "ort-quant-1.16@1.16", "ort-transformers-1.99@host", "pytorch@1.16"])
def test_an_onnx_produced_by_a_newer_onnxruntime_is_flagged(demo_package, tmp_path, producer, cell, flagged):
    package = variant(demo_package, tmp_path / "pkg", _edit(producer=producer))
    report = run(package, cell)
    codes = [f.code for f in report.findings]
    assert (CODE in codes) is flagged, report.findings
    if flagged:
        (finding,) = report.findings
        assert finding.observed == f"onnxruntime {producer[1]}" and f"produced by {producer[0]}" in finding.message


def test_a_declared_lineage_step_with_a_newer_tool_is_flagged(demo_package, tmp_path):
    lineage = [{"step": "export", "tool": "torch", "version": "2.13.0", "artifact": "model.onnx"},
               {"step": "quantize", "tool": "onnxruntime", "version": "1.20.0", "artifact": "model.onnx"},
               {"step": "optimize", "tool": "onnxruntime", "version": "1.22.0", "artifact": "model.pt2"}]
    package = variant(demo_package, tmp_path / "pkg", _edit(lineage=lineage))
    (finding,) = run(package, ORT_116).findings  # the torch step is another tool, the last another artifact
    assert finding.code == CODE and "lineage step `quantize` ran onnxruntime 1.20.0" in finding.message
    assert finding.expected == "<= onnxruntime 1.16.3"
