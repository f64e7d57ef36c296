"""Which candidates the transforms propose for which findings, with targets from the failing releases' limits."""
from __future__ import annotations

from pathlib import Path

import onnx

from modelcompat.matrix.spec import load_matrix
from modelcompat.remediation.transforms import Failing, failing_reports, propose
from modelcompat.results.report import Finding, Report, Severity, Status
from support.remediation_models import conv_model, matrix, package


def _report(cell: str, status: Status, code: str, version: str = "onnxruntime 1.16.3") -> Report:
    runtime, hardware, backend = cell.split("/")
    return Report(run_id="r", cell=cell, runtime=runtime, runtime_version=version, hardware=hardware, backend=backend,
                  validator=code.split(".")[0], validator_version="1", status=status,
                  findings=(Finding(code=code, severity=Severity.ERROR, message="m"),))


def _failing(tmp_path: Path, model: onnx.ModelProto, *reports: Report) -> Failing:
    cells = {c.id: c for c in load_matrix(matrix(tmp_path / "matrix.yaml")).select(None)}
    return Failing(package(model, tmp_path / "pkg"), list(reports), {r.cell: cells[r.cell] for r in reports})


def test_opset_and_ir_findings_propose_rewrites_to_the_failing_releases_limits(tmp_path: Path) -> None:
    failing = _failing(tmp_path, conv_model(21, 10),
                       _report("ort-1.16/cpu/ort-cpu", Status.FAIL, "loadability.ir_version_unsupported"),
                       _report("ort-1.17/cpu/ort-cpu", Status.FAIL, "opset_support.opset_too_new",
                               "onnxruntime 1.17.3"))
    ids = [c.id for c in propose(failing)]
    # ort 1.16 accepts IR 9 / opset 19 (the lower of the two releases), then the fallback IR 8 / opset 17.
    assert ids == ["ir-rewrite-9", "ir-rewrite-8", "opset-down-19", "opset-down-17"]


def test_a_parity_failure_proposes_lower_graph_optimisation_levels(tmp_path: Path) -> None:
    failing = _failing(tmp_path, conv_model(17, 8),
                       _report("ort-1.16/cpu/ort-cpu", Status.FAIL, "numerical_parity.tolerance_exceeded"))
    candidates = propose(failing)
    assert [(c.id, c.backend_options) for c in candidates] == [
        ("graph-optimization-extended", {"graph_optimization": "extended"}),
        ("graph-optimization-basic", {"graph_optimization": "basic"})]
    assert "graph_optimization: extended" in candidates[0].code


def test_named_transforms_are_tried_whatever_the_findings(tmp_path: Path) -> None:
    failing = _failing(tmp_path, conv_model(17, 8),
                       _report("ort-1.16/cpu/ort-cpu", Status.FAIL, "io_contract.dtype_mismatch"))
    assert propose(failing) == []  # nothing matches this finding
    assert [c.id for c in propose(failing, ["fp16-io32", "external-data"])] == ["fp16-io32-fp16", "external-data-split"]


def test_only_fail_reports_are_remediated() -> None:
    reports = [_report("a/b/c", Status.FAIL, "loadability.load_failed"),
               _report("a/b/d", Status.ERROR, "probe.crashed")]
    assert failing_reports(reports) == reports[:1]
