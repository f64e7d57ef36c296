"""Reading committed runs and their reports files (per-run parts and shared compacted files).

Readers see only runs whose runs file exists, and of each run only the reports file its row names.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from modelcompat.store.errors import StoreError
from modelcompat.store.layout import COMPACTED_DIR, RUNS_DIR, is_hidden, run_file
from modelcompat.store.publish import StoreFS
from modelcompat.store.schema import REPORTS_READ, RUN_ID_RE, RUNS_READ, conform

_READ_THREADS = 8
T = TypeVar("T")


def read_many(items: Sequence[T], read: Callable[[T], pa.Table]) -> list[pa.Table]:
    """``read`` over ``items`` in order; in parallel, since one small file per run makes latency (S3) the cost."""
    if len(items) <= 1:
        return [read(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(_READ_THREADS, len(items))) as pool:
        return list(pool.map(read, items))


def runs_table(files: StoreFS) -> pa.Table:
    """Every committed run (one listing of runs/), sorted by ``started_at`` then ``run_id``."""
    paths = [
        info.path
        for info in files.list(files.abs(RUNS_DIR), recursive=False)
        if info.is_file and info.base_name.endswith(".parquet") and not is_hidden(info.base_name)
    ]
    tables = read_many(paths, lambda p: conform(files.read_table(p), RUNS_READ, p))
    if not tables:
        return RUNS_READ.empty_table()
    return pa.concat_tables(tables).sort_by([("started_at", "ascending"), ("run_id", "ascending")])


def run_table(files: StoreFS, run_id: str) -> pa.Table | None:
    """The one-row runs table of ``run_id``, or None if it is not committed (or not a valid id)."""
    if not RUN_ID_RE.match(run_id):
        return None
    path = files.abs(run_file(run_id))
    try:
        return conform(files.read_table(path), RUNS_READ, path)
    except FileNotFoundError:
        return None


def reports_of(files: StoreFS, runs: pa.Table) -> pa.Table:
    """The reports of exactly these runs rows (their ``reports_file``), in row order; no new listing."""
    items = list(zip(runs.column("reports_file").to_pylist(), runs.column("run_id").to_pylist(), strict=True))
    tables = read_many(items, lambda item: read_reports_file(files, item[0], item[1]))
    return pa.concat_tables(tables) if tables else REPORTS_READ.empty_table()


def read_reports_file(files: StoreFS, relative: str | None, run_id: str) -> pa.Table:
    """One run's reports; follows the run's current row if compaction moved them since ``relative`` was read."""
    if relative is None:
        raise StoreError(f"run {run_id!r} in the store {files.uri} names no reports file")
    path = files.abs(relative)
    for _attempt in range(3):
        try:
            if relative.startswith(f"{COMPACTED_DIR}/"):
                table = _read_compacted(files, path, run_id)
            else:
                table = files.read_table(path)
            break
        except FileNotFoundError:
            # Store.compact moved this run to a compacted file and deleted the part we were told
            # about: the run's current runs row names the file to read.
            fresh = run_table(files, run_id)
            newer = fresh.column("reports_file")[0].as_py() if fresh is not None else None
            if newer is None or newer == relative:
                raise StoreError(f"run {run_id!r} is committed but its reports file {path} is missing") from None
            relative, path = newer, files.abs(newer)
    else:
        raise StoreError(f"run {run_id!r}: its reports file kept moving while being read ({path})")
    return conform(table, REPORTS_READ, path)


def _read_compacted(files: StoreFS, path: str, run_id: str) -> pa.Table:
    """One run's rows of a shared compacted file: only the row groups whose run_id range holds it."""
    with files.open_parquet(path) as pf:
        meta = pf.metadata
        groups = []
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            stats = next((group.column(j).statistics for j in range(group.num_columns)
                          if group.column(j).path_in_schema == "run_id"), None)
            if stats is None or not stats.has_min_max or stats.min <= run_id <= stats.max:
                groups.append(i)
        table = pf.read_row_groups(groups) if groups else pf.schema_arrow.empty_table()
    return table.filter(pc.equal(table.column("run_id"), run_id))
