"""Verdict and exit-code rules of the run summary."""
from __future__ import annotations

import pytest

from modelcompat.results.report import Report, Status
from modelcompat.results.summary import exit_code, run_summary, status_counts, verdict


def _report(status: Status, validator: str = "v") -> Report:
    return Report(run_id="r", cell="rt/cpu/b", runtime="rt", runtime_version="onnxruntime 1.0", hardware="cpu",
                  backend="b", validator=validator, validator_version="1", status=status)


@pytest.mark.parametrize(
    ("statuses", "expected_verdict", "expected_code"),
    [
        ([Status.PASS, Status.SKIPPED, Status.WARN], "pass", 0),
        ([Status.PASS, Status.FAIL, Status.ERROR], "fail", 1),
        ([Status.PASS, Status.ERROR], "error", 3),
        ([Status.SKIPPED], "pass", 0),
    ],
)
def test_verdict_and_exit_code(statuses, expected_verdict, expected_code) -> None:
    reports = [_report(s, f"v{i}") for i, s in enumerate(statuses)]
    assert verdict(reports) == expected_verdict
    assert exit_code(verdict(reports)) == expected_code


def test_summary_document_has_the_documented_fields() -> None:
    reports = [_report(Status.PASS), _report(Status.FAIL, "w")]
    doc = run_summary(run_id="r1", model={"name": "m", "version": "1", "sha256": "0" * 64},
                      matrix={"name": "default", "path": "x.yaml"}, reports=reports, started_at="s",
                      finished_at="f", trigger="cli", flow_run_id=None)
    assert doc["verdict"] == "fail"
    assert doc["counts"] == status_counts(reports) == {"pass": 1, "warn": 0, "fail": 1, "error": 0, "skipped": 0}
    first = doc["reports"][0]
    for key in ("cell", "runtime", "runtime_version", "hardware", "backend", "validator", "status", "cached",
                "duration_s", "metrics", "findings"):
        assert key in first
    assert first["runtime_version"] == "onnxruntime 1.0"
