"""What validators return and what is stored: status derived from findings; reports and findings are immutable."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelcompat.results.report import Finding, Outcome, Report, Severity, Status


def _finding(severity: Severity) -> Finding:
    return Finding(code="v.x", severity=severity, message="m")


@pytest.mark.parametrize(("severities", "status"), [
    ([], Status.PASS),
    ([Severity.INFO], Status.PASS),
    ([Severity.INFO, Severity.WARN], Status.WARN),
    ([Severity.WARN, Severity.ERROR, Severity.INFO], Status.FAIL),
])
def test_an_outcome_status_is_its_worst_finding(severities, status) -> None:
    assert Outcome(findings=[_finding(s) for s in severities]).status() is status


def test_reports_are_frozen_and_refuse_unknown_fields() -> None:
    report = Report(run_id="r", cell="rt/cpu/b", runtime="rt", runtime_version=None, hardware="cpu", backend="b",
                    validator="v", validator_version="1", status=Status.PASS)
    with pytest.raises(ValidationError):
        report.status = Status.FAIL
    with pytest.raises(ValidationError, match="colour"):
        Report(**report.model_dump(), colour="red")
    assert report.model_copy(update={"status": Status.FAIL}).status is Status.FAIL and report.status is Status.PASS
