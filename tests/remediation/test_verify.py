"""Verifying a candidate: the judgement per cell, and a real re-run of a matrix-option candidate."""
from __future__ import annotations

from pathlib import Path

import yaml

from modelcompat.model.package import load_package
from modelcompat.remediation.transforms import Candidate
from modelcompat.remediation.verify import Verdict, judge, rerun, verify
from modelcompat.results.report import Finding, Report, Severity, Status
from support.remediation_models import CHECKS, conv_model, matrix, package


def _r(cell: str, validator: str, status: Status, code: str | None = None) -> Report:
    findings = (Finding(code=code, severity=Severity.ERROR, message="differs"),) if code else ()
    return Report(run_id="r", cell=cell, runtime="x", runtime_version=None, hardware="cpu", backend="b",
                  validator=validator, validator_version="1", status=status, findings=findings)


OPSET = "loadability.opset_unsupported"


def _candidate() -> Candidate:
    return Candidate("opset-down", "ai.onnx opset 19", "code", lambda out: None)


def test_a_fix_that_breaks_a_passing_cell_is_rejected_with_that_reason_first() -> None:
    original = {("old/cpu/b", "loadability"): _r("old/cpu/b", "loadability", Status.FAIL, OPSET),
                ("new/cpu/b", "numerical_parity"): _r("new/cpu/b", "numerical_parity", Status.PASS)}
    new = [_r("old/cpu/b", "loadability", Status.PASS),
           _r("new/cpu/b", "numerical_parity", Status.FAIL, "numerical_parity.tolerance_exceeded")]
    verdict = judge(Verdict(_candidate()), original, {"old/cpu/b"}, new)
    assert not verdict.verified
    assert verdict.now_passing == ["old/cpu/b"] and verdict.broken == ["new/cpu/b"]
    assert verdict.reasons == ["new/cpu/b passed before, now fails: numerical_parity.tolerance_exceeded: differs"]


def test_a_fix_that_passes_the_targets_and_keeps_the_rest_is_verified() -> None:
    original = {("old/cpu/b", "loadability"): _r("old/cpu/b", "loadability", Status.FAIL, OPSET),
                ("new/cpu/b", "loadability"): _r("new/cpu/b", "loadability", Status.PASS)}
    new = [_r("old/cpu/b", "loadability", Status.PASS), _r("new/cpu/b", "loadability", Status.WARN)]
    verdict = judge(Verdict(_candidate()), original, {"old/cpu/b"}, new)
    assert verdict.verified and verdict.kept_passing == ["new/cpu/b"]


def test_a_session_option_candidate_reruns_on_a_matrix_with_the_option(tmp_path: Path) -> None:
    """The graph optimisation candidate: the same model, the failing cells' backend at a lower level. It cannot fix
    an IR refusal, so the real re-run rejects it, saying the target still fails."""
    pkg = package(conv_model(17, 10), tmp_path / "pkg")
    cells = ["host-ort/cpu/ort-cpu", "ort-1.16/cpu/ort-cpu"]
    original = rerun(matrix=matrix(tmp_path / "matrix.yaml"), model=pkg.root, validators=CHECKS, cells=cells,
                     store=str(tmp_path / "store"))
    reports = {(r.cell, r.validator): r for r in original.reports}
    candidate = Candidate("graph-optimization", "level basic", "matrix change", lambda out: None,
                          backend_options={"graph_optimization": "basic"})
    verdict = verify(load_package(pkg.root), candidate, matrix=tmp_path / "matrix.yaml", validators=CHECKS,
                     reports=reports, targets={"ort-1.16/cpu/ort-cpu"}, target_backends={"ort-cpu"},
                     workdir=tmp_path / "work")
    backends = yaml.safe_load(verdict.matrix.read_text())["backends"]
    assert backends[0]["graph_optimization"] == "basic"
    assert not verdict.verified and verdict.still_failing == ["ort-1.16/cpu/ort-cpu"]
    assert verdict.reasons[0].startswith("ort-1.16/cpu/ort-cpu still fails: loadability.ir_version_unsupported")
    assert verdict.kept_passing == ["host-ort/cpu/ort-cpu"]
