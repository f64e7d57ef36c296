"""A stored run's summary rebuilt from the store: its reports, the verdict stored with it, its comparison."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modelcompat.baseline.promotion import promote
from modelcompat.baseline.stored_run import summary_from_store
from modelcompat.results.report import Report, Status
from modelcompat.store import RunNotFoundError, Store
from support.store_records import T0, make_run


def _report(run_id: str, status: Status, p95: float) -> Report:
    return Report(run_id=run_id, cell="ort/cpu/b", runtime="ort", runtime_version="1", hardware="cpu", backend="b",
                  validator="latency", validator_version="1", status=status, metrics={"p95_latency_ms": p95})


def test_summary_carries_the_stored_verdict_and_the_comparison_made_then(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append_run(make_run("base", T0), [_report("base", Status.PASS, 1.0)])
    promote(store, "base", now=T0 + timedelta(minutes=1))
    later = make_run("later", T0 + timedelta(minutes=2)).model_copy(update={"verdict": "regressed"})
    store.append_run(later, [_report("later", Status.WARN, 5.0)])
    summary, comparison = summary_from_store(store, "later")
    assert summary.run_id == "later" and summary.verdict == "regressed"  # as decided and stored at the time
    assert summary.counts["warn"] == 1 and summary.code_version == later.code_version
    assert comparison.baseline_run_id == "base"
    assert {(c.kind, c.change) for c in comparison.changes} == {("status", "regression"), ("metric", "regression")}
    assert len(summary.changes) == len(comparison.changes)
    with pytest.raises(RunNotFoundError, match="pick one of the recent runs: base, later"):
        summary_from_store(store, "nope")
