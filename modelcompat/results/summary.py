"""The run summary (the `--json` document, docs/run-summary.md) as a typed model, and how it is built from reports.

The model dumps to exactly the documented JSON (field order included); `tests/results` checks that a
written document validates against it and dumps back byte for byte.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, create_model, field_serializer

from modelcompat.results.report import Evidence, Finding, Report, Status
from modelcompat.results.verdict import Verdict, exit_code, verdict

__all__ = ["SUMMARY_SCHEMA_VERSION", "MatrixRef", "ModelRef", "RunSummary", "StoredRunSummary",
           "SummaryChange", "SummaryReport", "Verdict", "exit_code", "run_summary", "status_counts", "verdict"]

SUMMARY_SCHEMA_VERSION = 1


# What the summary needs of `modelcompat.baseline.comparison` (a layer above results, so not imported).
class Change(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class Comparison(Protocol):
    baseline_run_id: str | None

    @property
    def regressions(self) -> list[Any]: ...  # of Change

    def verdict(self, run_verdict: str) -> str: ...
_STRICT = ConfigDict(extra="forbid", frozen=True)


class ModelRef(BaseModel):
    model_config = _STRICT

    name: str
    version: str
    sha256: str = Field(description="sha256 of the package's first artifact.")


class MatrixRef(BaseModel):
    model_config = _STRICT

    name: str
    path: str


# The fields of a Report that the summary lists, in Report's order: without run id, cache key or inputs.
SUMMARY_REPORT_FIELDS = ("cell", "runtime", "runtime_version", "hardware", "backend", "validator", "validator_version",
                         "status", "cached", "cached_from", "duration_s", "metrics", "findings", "evidence")


class _SummaryReportBase(BaseModel):
    model_config = _STRICT

    @classmethod
    def from_report(cls, report: Report) -> SummaryReport:
        values = {name: getattr(report, name) for name in SUMMARY_REPORT_FIELDS}
        return cls(**{**values, "duration_s": round(report.duration_s, 4), "metrics": dict(report.metrics)})

    # Inside findings and evidence, unknown values are left out rather than written as null.
    @field_serializer("findings", check_fields=False)
    def _findings(self, findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
        return [f.model_dump(mode="json", exclude_none=True) for f in findings]

    @field_serializer("evidence", check_fields=False)
    def _evidence(self, evidence: Evidence) -> dict[str, Any]:
        return evidence.model_dump(mode="json", exclude_none=True)


# One (cell, validator) report as the summary lists it; its fields are Report's own (one definition), all required.
SummaryReport = create_model(
    "SummaryReport", __base__=_SummaryReportBase, __module__=__name__,
    **{name: (Report.model_fields[name].annotation, ...) for name in SUMMARY_REPORT_FIELDS})


class SummaryChange(BaseModel):
    """A change of one check against the baseline (`modelcompat.baseline.comparison.Change` as JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Field order is the order the documents have always been written in (`from` last).
    cell: str
    validator: str
    kind: Literal["status", "metric"]
    change: Literal["regression", "fix", "improvement", "change", "new", "removed"]
    severity: Literal["info", "minor", "major", "critical"]
    to: str | int | float | None = None
    metric: str | None = None
    delta_pct: float | None = None
    baseline_run_id: str | None = None
    remediation: str | None = None
    note: str | None = None
    from_: str | int | float | None = Field(None, alias="from")

    @classmethod
    def from_change(cls, change: Change) -> SummaryChange:
        return cls.model_validate(change.to_json())


class RunSummary(BaseModel):
    """What `modelcompat run --json PATH` writes and the renderers read (docs/run-summary.md)."""

    model_config = _STRICT

    schema_version: int = SUMMARY_SCHEMA_VERSION
    run_id: str
    flow_run_id: str | None
    trigger: str
    started_at: str
    finished_at: str
    model: ModelRef
    matrix: MatrixRef
    verdict: Verdict
    counts: dict[str, int]
    plan: dict[str, int]
    baseline_run_id: str | None
    regressions: list[SummaryChange]
    reports: list[SummaryReport]

    def to_json(self) -> dict[str, Any]:
        """The document as JSON-ready data (the shape Prefect records as the flow's result)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json_text(self) -> str:
        """The document as written to disk: 2-space indented, newline-terminated."""
        return json.dumps(self.to_json(), indent=2) + "\n"


class StoredRunSummary(RunSummary):
    """A committed run's summary rebuilt from the store (`modelcompat report RUN_ID --format json`)."""

    code_version: str | None
    changes: list[SummaryChange] = Field(description="Every change against the baseline, info ones included.")


def status_counts(reports: Iterable[Report]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for r in reports:
        counts[r.status.value] += 1
    return counts


def run_summary(*, run_id: str, model: ModelRef | dict[str, str], matrix: MatrixRef | dict[str, str],
                reports: list[Report], started_at: str, finished_at: str, trigger: str, flow_run_id: str | None,
                plan: dict[str, int] | None = None, comparison: Comparison | None = None) -> RunSummary:
    """The summary of a run's reports (see docs/run-summary.md).

    With ``comparison`` (the run against its baseline), ``verdict`` is the final one: the run's own
    `fail`/`error` first, else `regressed` when a regression is found.
    """
    v = verdict(reports)
    if comparison is not None:
        v = Verdict(comparison.verdict(v))
    return RunSummary(
        run_id=run_id, flow_run_id=flow_run_id, trigger=trigger, started_at=started_at, finished_at=finished_at,
        model=ModelRef.model_validate(model), matrix=MatrixRef.model_validate(matrix), verdict=v,
        counts=status_counts(reports), plan=plan or {},
        baseline_run_id=comparison.baseline_run_id if comparison else None,
        regressions=[SummaryChange.from_change(c) for c in comparison.regressions] if comparison else [],
        reports=[SummaryReport.from_report(r) for r in reports],
    )
