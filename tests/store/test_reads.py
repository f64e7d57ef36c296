"""Reads that agree: a run committed while a reader reads is in neither its runs nor its reports."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from modelcompat.store import Store, StoreError, reads
from modelcompat.store.publish import StoreFS
from support.store_records import T0, assert_every_run_complete, make_report, make_run


def _append(root: Path, run_id: str, minutes: int, n: int = 3) -> None:
    Store(root).append_run(make_run(run_id, T0 + timedelta(minutes=minutes)), [make_report(run_id, i) for i in range(n)])


def test_two_separate_reads_disagree_but_reports_for_does_not(tmp_path: Path) -> None:
    _append(tmp_path, "r1", 0)
    store = Store(tmp_path)
    runs = store.runs()
    _append(tmp_path, "r2", 1)  # another writer commits between the reader's two reads
    assert set(store.reports()["run_id"]) == {"r1", "r2"}  # a fresh listing: r2 has no row in `runs`
    listed = store.reports_for(runs)
    assert set(listed["run_id"]) == {"r1"} and len(listed) == 3
    with pytest.raises(StoreError, match="reports_file"):
        store.reports_for(runs[["run_id"]])


def test_snapshot_reads_reports_of_its_own_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _append(tmp_path, "r1", 0)
    real = reads.reports_of
    committed: list[str] = []

    def commit_then_read(files: StoreFS, runs: pa.Table) -> pa.Table:
        # Force the race the old helper lost: a run commits after the listing, before the reports are read.
        if not committed:
            _append(tmp_path, "r2", 1)
            committed.append("r2")
        return real(files, runs)

    monkeypatch.setattr(reads, "reports_of", commit_then_read)
    store = Store(tmp_path)
    snapshot = store.snapshot()
    assert committed == ["r2"]  # the commit did happen mid-snapshot
    assert list(snapshot.runs["run_id"]) == ["r1"] and set(snapshot.reports["run_id"]) == {"r1"}
    assert_every_run_complete(store)  # its next snapshot holds r2, whole
    assert list(store.snapshot().runs["run_id"]) == ["r1", "r2"]


def test_read_many_keeps_order(tmp_path: Path) -> None:
    for k in range(12):
        _append(tmp_path, f"r{k:02d}", k, n=1)
    files = StoreFS(tmp_path)
    table = reads.runs_table(files)
    assert table.column("run_id").to_pylist() == [f"r{k:02d}" for k in range(12)]
    assert reads.reports_of(files, table).column("run_id").to_pylist() == [f"r{k:02d}" for k in range(12)]
    assert reads.run_table(files, "../x") is None and reads.run_table(files, "absent") is None
    with pytest.raises(StoreError, match="names no reports file"):
        reads.read_reports_file(files, None, "r00")
