"""A remediated package keeps the original's provenance, with the rewrite appended to its lineage (a candidate that
only changes backend options leaves the lineage as it was)."""
from __future__ import annotations

from pathlib import Path

import onnx

from modelcompat import __version__
from modelcompat.remediation.transforms import Candidate
from modelcompat.remediation.verify import build_candidate
from support.pkgvariants import variant
from support.remediation_models import conv_model, package

DECLARED = {"licence": "MIT", "owner": "vision-team",
            "lineage": [{"step": "export", "tool": "torch", "version": "2.13.0", "artifact": "model.onnx"}]}


def _declared(folder: Path, manifest: dict) -> None:
    manifest["provenance"] = DECLARED


def _ir9(src: Path):
    def make(out: Path) -> Path:
        model = onnx.load(str(src))
        model.ir_version = 9
        out.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(out / "model.onnx"))
        return out / "model.onnx"
    return make


def test_a_rewrite_is_appended_to_the_lineage(tmp_path: Path) -> None:
    original = variant(package(conv_model(17, 10), tmp_path / "pkg"), tmp_path / "declared", _declared)
    candidate = Candidate("ir-rewrite", "IR 9", "model.ir_version = 9", _ir9(original.resolve("model.onnx")))
    fixed = build_candidate(original, candidate, tmp_path / "fixed", tmp_path / "scratch")
    provenance = fixed.manifest.provenance
    assert provenance.licence == "MIT" and provenance.owner == "vision-team"
    assert [(s.step, s.tool) for s in provenance.lineage] == [("export", "torch"),
                                                              ("ir-rewrite", "modelcompat remediate")]
    step = provenance.lineage[-1]
    assert step.version == __version__ and step.artifact == "model.onnx" and step.note == "IR 9"
    assert onnx.load(str(fixed.resolve("model.onnx"))).ir_version == 9
    assert original.manifest.provenance.lineage[-1].step == "export"  # the original package is untouched


def test_backend_options_leave_the_lineage_and_an_undeclared_rewrite_starts_one(tmp_path: Path) -> None:
    original = variant(package(conv_model(17, 10), tmp_path / "pkg"), tmp_path / "declared", _declared)
    options = Candidate("graph-optimization", "level basic", "matrix change", lambda out: None,
                        backend_options={"graph_optimization": "basic"})
    kept = build_candidate(original, options, tmp_path / "kept", tmp_path / "s1")
    assert kept.manifest.provenance == original.manifest.provenance
    bare = package(conv_model(17, 10), tmp_path / "bare")
    rewritten = build_candidate(bare, Candidate("ir-rewrite", "IR 9", "x", _ir9(bare.resolve("model.onnx"))),
                                tmp_path / "rewritten", tmp_path / "s2")
    assert [s.step for s in rewritten.manifest.provenance.lineage] == ["ir-rewrite"]
    assert rewritten.manifest.provenance.licence is None
