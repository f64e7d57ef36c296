"""The run summary (the `--json` document), the verdict and the CLI exit code derived from reports."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modelcompat.results.report import Report, Status

if TYPE_CHECKING:
    from modelcompat.baseline.comparison import Comparison

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_ERROR = 0, 1, 2, 3
SUMMARY_SCHEMA_VERSION = 1


def verdict(reports: Iterable[Report]) -> str:
    """`fail` if any check failed, else `error` if any could not run, else `pass`."""
    statuses = {r.status for r in reports}
    if Status.FAIL in statuses:
        return "fail"
    if Status.ERROR in statuses:
        return "error"
    return "pass"


def exit_code(verdict_: str) -> int:
    """0 pass/warn/skipped only; 1 a fail or a regression; 3 an error and no fail."""
    return {"pass": EXIT_OK, "fail": EXIT_FAIL, "regressed": EXIT_FAIL, "error": EXIT_ERROR}[verdict_]


def status_counts(reports: Iterable[Report]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for r in reports:
        counts[r.status.value] += 1
    return counts


def run_summary(*, run_id: str, model: dict[str, str], matrix: dict[str, str], reports: list[Report],
                started_at: str, finished_at: str, trigger: str, flow_run_id: str | None,
                plan: dict[str, int] | None = None, comparison: Comparison | None = None) -> dict[str, Any]:
    """The document `modelcompat run --json PATH` writes (see docs/run-summary.md).

    With ``comparison`` (the run against its baseline), ``verdict`` is the final one: the run's own
    `fail`/`error` first, else `regressed` when a regression is found.
    """
    v = verdict(reports)
    if comparison is not None:
        v = comparison.verdict(v)
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run_id": run_id,
        "flow_run_id": flow_run_id,
        "trigger": trigger,
        "started_at": started_at,
        "finished_at": finished_at,
        "model": model,
        "matrix": matrix,
        "verdict": v,
        "counts": status_counts(reports),
        "plan": plan or {},
        "baseline_run_id": comparison.baseline_run_id if comparison else None,
        "regressions": [c.to_json() for c in comparison.regressions] if comparison else [],
        "reports": [r.summary_dict() for r in reports],
    }
