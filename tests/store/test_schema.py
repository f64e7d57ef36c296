"""The store schema: versions in metadata and column, older files conformed, newer ones refused."""
from __future__ import annotations

import re

import pyarrow as pa
import pytest

from modelcompat.store import RUN_ID_PATTERN, StoreError
from modelcompat.store.schema import (
    META_VERSION,
    REPORTS_SCHEMA,
    RUNS_READ,
    RUNS_SCHEMA,
    SCHEMA_VERSION,
    conform,
    file_version,
    metadata,
)


def test_schemas_carry_their_version_and_table() -> None:
    assert RUNS_SCHEMA.metadata == metadata("runs") == {META_VERSION: str(SCHEMA_VERSION).encode(), b"modelcompat.table": b"runs"}
    assert REPORTS_SCHEMA.metadata[b"modelcompat.table"] == b"reports"
    assert SCHEMA_VERSION == 3  # bump only with a migration note: files on disk carry it
    assert all(f.nullable for f in RUNS_READ)
    assert re.match(RUN_ID_PATTERN, "run-2026.01_a") and not re.match(RUN_ID_PATTERN, "-x")


def test_file_version_from_metadata_then_column_then_zero() -> None:
    by_column = pa.table({"schema_version": pa.array([2], pa.int32())})
    assert file_version(by_column) == 2
    assert file_version(by_column.replace_schema_metadata({META_VERSION: b"1"})) == 1
    assert file_version(pa.table({"x": [1]})) == 0


def test_conform_fills_missing_drops_unknown_and_casts() -> None:
    old = pa.table({"run_id": ["r1"], "n_reports": pa.array([4], pa.int32()), "gone": ["x"]})
    out = conform(old, RUNS_READ, "runs/r1.parquet")
    assert out.schema == RUNS_READ
    row = out.to_pylist()[0]
    assert row["run_id"] == "r1" and row["n_reports"] == 4 and row["schema_version"] == 0
    assert row["flow_run_id"] is None and "gone" not in row


def test_conform_refuses_newer_files_and_bad_types() -> None:
    newer = pa.table({"run_id": ["r1"]}).replace_schema_metadata({META_VERSION: str(SCHEMA_VERSION + 1).encode()})
    with pytest.raises(StoreError, match="runs/r1.parquet has schema_version 4, newer.*upgrade modelcompat"):
        conform(newer, RUNS_READ, "runs/r1.parquet")
    with pytest.raises(StoreError, match="column 'started_at'"):
        conform(pa.table({"started_at": [[1, 2]]}), RUNS_READ, "runs/r1.parquet")
