"""A committed run's summary document rebuilt from the store (the input of every `modelcompat report` format)."""
from __future__ import annotations

from modelcompat.baseline.comparison import Comparison, compare_run
from modelcompat.results.summary import StoredRunSummary, SummaryChange, run_summary
from modelcompat.store import Store, report_from_row


def summary_from_store(store: Store, run_id: str) -> tuple[StoredRunSummary, Comparison]:
    """The run summary of ``run_id`` (as `modelcompat run --json` wrote it) and its comparison.

    The comparison is made against the baseline as it was when the run finished, so it is the one the
    flow made; ``verdict`` is the verdict stored with the run.

    Raises:
        the error of `Store.require_run` when the store holds no such run (it lists the recent ones).
    """
    record = store.require_run(run_id)
    frame = store.reports(run_id)
    reports = [report_from_row(r) for r in frame.to_dict("records")]
    comparison = compare_run(store, run_id)
    summary = run_summary(
        run_id=run_id, flow_run_id=record.flow_run_id, trigger=record.trigger,
        model={"name": record.model_name, "version": record.model_version, "sha256": record.model_sha256},
        matrix={"name": record.matrix, "path": record.matrix_path or ""}, reports=reports,
        started_at=record.started_at.isoformat(), finished_at=record.finished_at.isoformat(),
        comparison=comparison,
    )
    stored = StoredRunSummary(
        **{**dict(summary), "verdict": record.verdict or summary.verdict},  # the verdict decided at the time
        code_version=record.code_version,
        changes=[SummaryChange.from_change(c) for c in comparison.changes],
    )
    return stored, comparison
