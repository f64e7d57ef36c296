"""The run summary model: the documented fields, and a written document validates and dumps back byte for byte."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelcompat.baseline.comparison import Change, Comparison
from modelcompat.results.report import Evidence, Finding, Report, Severity, Status
from modelcompat.results.summary import RunSummary, StoredRunSummary, SummaryChange, run_summary, status_counts
from modelcompat.results.verdict import Verdict

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-summary.md"


def _report(status: Status, validator: str = "v", **kw) -> Report:
    return Report(run_id="r", cell="rt/cpu/b", runtime="rt", runtime_version="onnxruntime 1.0", hardware="cpu",
                  backend="b", validator=validator, validator_version="1", status=status, **kw)


def _summary(reports: list[Report], comparison: Comparison | None = None) -> RunSummary:
    return run_summary(run_id="r1", model={"name": "m", "version": "1", "sha256": "0" * 64},
                       matrix={"name": "default", "path": "x.yaml"}, reports=reports, started_at="s",
                       finished_at="f", trigger="cli", flow_run_id=None, comparison=comparison,
                       plan={"run": 1, "cached": 1, "skipped": 0})


def _rich_summary() -> RunSummary:
    reports = [
        _report(Status.FAIL, duration_s=0.123456789, metrics={"load_time_ms": 21.7, "nan": float("nan")},
                findings=(Finding(code="v.x", severity=Severity.ERROR, message="m", remediation="fix", step="load"),),
                evidence=Evidence(artifact_path="model.onnx", environment={"python": "3.11"}, worker="h:1")),
        _report(Status.PASS, "w", cached=True, cached_from="r0"),
    ]
    comparison = Comparison(baseline_run_id="b", changes=[
        Change(cell="rt/cpu/b", validator="v", kind="status", change="regression", severity="critical",
               from_="pass", to="fail", baseline_run_id="b", remediation="r"),
        Change(cell="rt/cpu/b", validator="w", kind="metric", change="regression", severity="major", from_=4.12,
               to=5.31, metric="p95_latency_ms", delta_pct=28.8834, baseline_run_id="b", note="n")])
    return _summary(reports, comparison)


def test_summary_document_has_the_documented_fields() -> None:
    reports = [_report(Status.PASS), _report(Status.FAIL, "w")]
    doc = _summary(reports)
    assert doc.verdict is Verdict.FAIL
    assert doc.counts == status_counts(reports) == {"pass": 1, "warn": 0, "fail": 1, "error": 0, "skipped": 0}
    first = doc.to_json()["reports"][0]
    assert list(first) == ["cell", "runtime", "runtime_version", "hardware", "backend", "validator",
                           "validator_version", "status", "cached", "cached_from", "duration_s", "metrics",
                           "findings", "evidence"]
    assert first["runtime_version"] == "onnxruntime 1.0"


def test_the_documented_example_names_exactly_the_model_fields() -> None:
    example = re.search(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
    keys = set(re.findall(r'"(\w+)":', example))
    fields = set(RunSummary.model_fields)
    assert fields <= keys, f"undocumented summary fields: {fields - keys}"
    regression = {f.alias or name for name, f in SummaryChange.model_fields.items()}
    assert regression <= keys


def test_written_json_validates_against_the_model_and_dumps_back_byte_for_byte(tmp_path: Path) -> None:
    summary = _rich_summary()
    path = tmp_path / "summary.json"
    path.write_text(summary.to_json_text())  # what `modelcompat run --json` writes
    text = path.read_text()
    again = RunSummary.model_validate(json.loads(text))
    assert again.to_json_text() == text
    assert again.verdict is Verdict.FAIL
    assert [g.from_ for g in again.regressions] == ["pass", 4.12]
    doc = json.loads(text)
    # unknown values inside findings and evidence are left out; at the report level they are null
    assert "observed" not in doc["reports"][0]["findings"][0] and doc["reports"][1]["cached_from"] == "r0"
    assert doc["reports"][0]["evidence"] == {"artifact_path": "model.onnx", "environment": {"python": "3.11"},
                                             "worker": "h:1"}
    assert doc["reports"][0]["duration_s"] == 0.1235
    assert doc["regressions"][1]["from"] == 4.12 and "from_" not in doc["regressions"][1]


def test_a_document_that_drifted_from_the_model_is_refused() -> None:
    doc = _rich_summary().to_json()
    with pytest.raises(ValidationError, match="colour"):
        RunSummary.model_validate({**doc, "colour": "red"})
    with pytest.raises(ValidationError, match="verdict"):
        RunSummary.model_validate({**doc, "verdict": "maybe"})


def test_a_stored_summary_adds_code_version_and_changes_after_the_reports() -> None:
    summary = _rich_summary()
    stored = StoredRunSummary(**dict(summary), code_version="1.2.3", changes=summary.regressions)
    assert list(stored.to_json())[-3:] == ["reports", "code_version", "changes"]
    text = stored.to_json_text()
    assert StoredRunSummary.model_validate_json(text).to_json_text() == text
