"""A committed run's summary document rebuilt from the store (the input of every `modelcompat report` format)."""
from __future__ import annotations

from typing import Any

from modelcompat.baseline.comparison import Comparison, compare_run
from modelcompat.results.summary import run_summary
from modelcompat.store import Store, report_from_row


def summary_from_store(store: Store, run_id: str) -> tuple[dict[str, Any], Comparison]:
    """The run summary of ``run_id`` (as `modelcompat run --json` wrote it) and its comparison.

    The comparison is made against the baseline as it was when the run finished, so it is the one the
    flow made; ``verdict`` is the verdict stored with the run.

    Raises:
        InputError: no such run in the store (with the recent run ids).
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
    if record.verdict:
        summary["verdict"] = record.verdict  # what was decided and stored at the time
    summary["code_version"] = record.code_version
    summary["changes"] = [c.to_json() for c in comparison.changes]
    return summary, comparison
