"""The check cache: one finished check per ``checks/<cache_key>.parquet``, kept before its run commits.

Written by the flow as each cell finishes, so a run killed before it commits still leaves its finished
checks for the next run to reuse (docs/caching.md). Not part of any run: runs/reports readers never
read it, and deleting the folder only costs re-runs. Last writer of a key wins (equal keys mean equal
inputs, so either report is as good).
"""
from __future__ import annotations

import re

import pyarrow as pa

from modelcompat.results.report import Report
from modelcompat.store.errors import StoreError
from modelcompat.store.layout import check_file
from modelcompat.store.publish import StoreFS
from modelcompat.store.rows import report_from_row, report_to_row
from modelcompat.store.schema import REPORTS_READ, REPORTS_SCHEMA, conform

_KEY_RE = re.compile(r"[0-9a-f]{16,128}")


def save_check(files: StoreFS, report: Report) -> None:
    """Keep one finished check (temp name + rename)."""
    if not report.cache_key or not _KEY_RE.fullmatch(report.cache_key):
        raise StoreError(f"report {report.cell}/{report.validator} has no usable cache_key")
    table = pa.Table.from_pylist([report_to_row(report)], schema=REPORTS_SCHEMA)
    files.write_table(table, files.abs(check_file(report.cache_key)), exclusive=False)


def load_check(files: StoreFS, cache_key: str) -> Report | None:
    """The cached report with this key (its ``run_id`` is the run that produced it), or None."""
    if not _KEY_RE.fullmatch(cache_key or ""):
        return None
    path = files.abs(check_file(cache_key))
    try:
        table = conform(files.read_table(path), REPORTS_READ, path)
    except (OSError, pa.ArrowException, StoreError):  # absent, or unreadable: a cache miss, not an error
        return None
    rows = table.to_pylist(maps_as_pydicts="strict")
    return report_from_row(rows[0]) if rows else None
