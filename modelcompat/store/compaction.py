"""Store maintenance: merging many runs' reports files into one (atomic for readers), removing orphans."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from modelcompat.files.atomic import TMP_PREFIX
from modelcompat.store.errors import StoreError
from modelcompat.store.layout import COMPACTED_DIR, REPORTS_DIR, RUNS_DIR, run_file
from modelcompat.store.publish import StoreFS
from modelcompat.store.reads import read_reports_file, run_table, runs_table
from modelcompat.store.records import Compaction
from modelcompat.store.schema import REPORTS_SCHEMA, RUNS_SCHEMA, metadata


def cleanup_orphans(files: StoreFS, older_than: timedelta = timedelta(hours=1)) -> list[str]:
    """Delete ``.tmp-*`` files and reports parts no committed run names, if older than ``older_than``.

    The age protects writers still in flight: with ``older_than=0`` run it only when no writer is
    active. Returns the deleted paths.
    """
    cutoff = datetime.now(timezone.utc) - older_than
    reports_root = files.abs(REPORTS_DIR)
    # List before reading the runs: a part committed after the listing is young, so it is kept.
    report_infos = files.list(reports_root, recursive=True)
    run_infos = files.list(files.abs(RUNS_DIR), recursive=False)
    committed = {files.abs(f) for f in runs_table(files).column("reports_file").to_pylist() if f}
    removed: list[str] = []
    for info in [*report_infos, *run_infos]:
        if not info.is_file or info.mtime is None or info.mtime > cutoff:
            continue
        stray_tmp = info.base_name.startswith(TMP_PREFIX)
        orphan_part = info.path.startswith(f"{reports_root}/") and info.path not in committed
        if stray_tmp or orphan_part:
            files.delete_quietly(info.path)
            removed.append(info.path)
    if files.local:
        # Object stores have no folders to tidy; local empty run folders would pile up.
        for info in report_infos:
            if info.type == pafs.FileType.Directory and info.mtime is not None and info.mtime <= cutoff:
                try:
                    os.rmdir(info.path)  # refuses non-empty folders: never races a writer's file
                except OSError:
                    pass
    return removed


def compact(files: StoreFS, older_than_runs: int | None = None) -> Compaction:
    """Merge the reports files of committed runs into one ``reports/~compacted/part-*.parquet``.

    ``older_than_runs=N`` leaves the newest N runs (by ``started_at``) as they are; None takes all.
    Runs whose file is shared with a run outside the selection keep it. Already compacted files of
    selected runs are merged again, so repeated compactions keep the file count low.

    Atomic for readers, in three steps: (1) write the merged file (one row group per run) to a
    ``.tmp-`` name and rename it into place; (2) per run, replace its runs row by one naming the
    merged file (temp name + ``os.replace``: a reader sees the old or the new row, both valid);
    (3) only then delete the old files that no runs row names any more. A reader that read an old
    row just before its file was deleted re-reads the row (``reads.read_reports_file``). A crash leaves
    at most a ``.tmp-`` file (1), an unreferenced merged file (before any row moved), old parts no row
    names (2, 3), or a merged file also holding rows of runs that still point at their old part
    (readers filter by run_id): :func:`cleanup_orphans` removes what no row names, and ``compact``
    can simply be run again. Run one compaction at a time (it is maintenance, like cleanup).
    """
    if older_than_runs is not None and older_than_runs < 0:
        raise StoreError(f"older_than_runs must be >= 0, not {older_than_runs}")
    every = runs_table(files).to_pylist()
    chosen = every if older_than_runs is None else every[: max(0, len(every) - older_than_runs)]
    chosen_ids = {r["run_id"] for r in chosen}
    users: dict[str, set[str]] = {}
    for row in every:
        users.setdefault(row["reports_file"], set()).add(row["run_id"])
    chosen = [r for r in chosen if r["reports_file"] and users[r["reports_file"]] <= chosen_ids]
    sources = {r["reports_file"] for r in chosen}
    if len(sources) < 2:
        return Compaction()

    # (1) the merged file, streamed one run (= one row group) at a time.
    relative = f"{COMPACTED_DIR}/part-{uuid.uuid4().hex}.parquet"
    n_rows = 0

    def merge(out: object) -> None:
        nonlocal n_rows
        n_rows = 0
        with pq.ParquetWriter(out, REPORTS_SCHEMA) as writer:
            for row in chosen:
                table = read_reports_file(files, row["reports_file"], row["run_id"])
                try:
                    table = table.cast(REPORTS_SCHEMA)
                except ValueError as exc:  # a null in a column required today: refuse, keep everything
                    raise StoreError(f"run {row['run_id']!r} cannot be compacted: {exc}") from exc
                writer.write_table(table)
                n_rows += table.num_rows

    files.write(files.abs(relative), merge, exclusive=False)

    # (2) repoint each run; a row that changed since the listing is left alone.
    moved = []
    for row in chosen:
        fresh = run_table(files, row["run_id"])
        if fresh is None or fresh.column("reports_file")[0].as_py() != row["reports_file"]:
            continue
        index = fresh.schema.get_field_index("reports_file")
        fresh = fresh.set_column(index, fresh.schema.field(index), pa.array([relative], pa.string()))
        try:
            fresh = fresh.cast(RUNS_SCHEMA)
        except ValueError:  # an older row with a null where a value is required today: keep it nullable
            fresh = fresh.replace_schema_metadata(metadata("runs"))
        files.write_table(fresh, files.abs(run_file(row["run_id"])), exclusive=False)
        moved.append(row["run_id"])

    # (3) delete the old files no runs row names any more.
    named = set(runs_table(files).column("reports_file").to_pylist())
    removed = []
    for source in sorted(sources - named):
        files.delete_quietly(files.abs(source))
        removed.append(source)
    if files.local:
        for source in removed:
            folder = files.abs(source).rsplit("/", 1)[0]
            if not folder.endswith(COMPACTED_DIR):
                try:
                    os.rmdir(folder)  # the run's folder, if now empty
                except OSError:
                    pass
    return Compaction(file=relative, run_ids=tuple(moved), rows=n_rows, removed=tuple(removed))
