"""The one Report <-> row conversion: Parquet rows and `Store.reports()` frame rows give equal Reports."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from modelcompat.results.report import Report, Status
from modelcompat.store import SCHEMA_VERSION, Store, StoreError, report_from_row, report_to_row, reports_from_frame
from support.store_records import make_report, make_run


def test_row_round_trip_covers_every_field() -> None:
    report = make_report("r1", 4)
    row = report_to_row(report)
    assert row["schema_version"] == SCHEMA_VERSION and row["evidence_runtime_version"] == "onnxruntime 1.4.0"
    assert report_from_row(row) == report


def test_frame_rows_with_nan_nulls_read_back(tmp_path: Path) -> None:
    minimal = Report(run_id="r1", cell="c", runtime="rt", runtime_version=None, hardware="cpu", backend="b",
                     validator="v", validator_version="0", status=Status.SKIPPED)
    reports = [make_report("r1", 1), minimal]
    store = Store(tmp_path)
    store.append_run(make_run("r1"), reports)
    frame = store.reports("r1")
    assert reports_from_frame(frame) == reports == store.load_reports("r1")
    # pandas turns a null float into NaN: the conversion reads it as "not set", not as a value
    row = frame.iloc[1].to_dict()
    row["cached_from"] = math.nan
    assert report_from_row(row) == minimal


def test_a_report_field_without_a_column_is_refused() -> None:
    class Extended(Report):
        new_field: int = 1

    base = make_report("r1", 0)
    with pytest.raises(StoreError, match=r"\['new_field'\] have no column.*bump SCHEMA_VERSION"):
        report_to_row(Extended(**{name: getattr(base, name) for name in Report.model_fields}))
