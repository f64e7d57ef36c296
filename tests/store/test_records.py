"""Store records: RunRecord validation and its reading from a runs row, Compaction, Snapshot."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelcompat.store import Compaction, RunRecord, Snapshot, Store
from modelcompat.store.publish import StoreFS
from modelcompat.store.reads import runs_table
from support.store_records import T0, make_report, make_run


def test_run_record_times_are_utc_and_ids_file_safe() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert make_run("r1", datetime(2026, 1, 1, 21, tzinfo=tokyo)).started_at == T0
    assert make_run("r1").started_at.tzinfo == timezone.utc
    for bad in ("../x", ".hidden", "_x", "a=b", "a/b", ""):
        with pytest.raises(ValidationError):
            make_run(bad)
    with pytest.raises(ValidationError, match="timezone-aware"):
        make_run("r1", datetime(2026, 1, 1))


def test_from_row_ignores_the_store_columns(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append_run(make_run("r1"), [make_report("r1", i) for i in range(3)])
    row = runs_table(StoreFS(tmp_path)).to_pylist()[0]
    assert {"reports_file", "schema_version"} <= set(row)
    assert RunRecord.from_row(row) == make_run("r1").model_copy(update={"n_reports": 3})


def test_compaction_and_snapshot_defaults(tmp_path: Path) -> None:
    nothing = Compaction()
    assert nothing.file is None and nothing.run_ids == () and nothing.rows == 0
    snapshot = Store(tmp_path).snapshot()
    assert isinstance(snapshot, Snapshot) and snapshot.runs.empty and snapshot.reports.empty
