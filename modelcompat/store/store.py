"""The report store: Parquet files through pyarrow, one immutable set of files per run.

Layout under the store root (a local folder, or any pyarrow/fsspec URI such as ``s3://bucket/prefix``)::

    runs/<run_id>.parquet                        one row: the run (the commit marker)
    reports/<run_id>/part-<token>.parquet        one row per (cell, validator) of that run
    runs/.tmp-*, reports/<run_id>/.tmp-*         in-flight writes (never read)
    reports/~compacted/part-<token>.parquet      reports of many runs merged by Store.compact (one row group per run)
    checks/<cache_key>.parquet                   the check cache: one finished check each, written as
                                                 it finishes, before its run commits (docs/caching.md)

A run is written as: reports file (to ``.tmp-…`` then renamed), then the runs file (to ``.tmp-…``
then renamed, never over an existing one). The runs file is the commit marker: ``Store`` readers see
only runs whose runs file exists, and only the reports file that runs row names in ``reports_file``.
A writer killed part-way leaves at most a ``.tmp-*`` file or an unreferenced reports part, which no
``Store`` reader returns and :meth:`Store.cleanup_orphans` removes.

Both folders read as they are with ``pandas.read_parquet(root / "runs")`` or
``pyarrow.dataset.dataset(root / "reports")``: files starting with ``.`` are skipped by pyarrow, and
the run folders are not ``key=value`` (hive) names, so ``run_id`` is an ordinary column, never a
conflicting partition key. A raw read of ``reports/`` may include an uncommitted part of a crashed
writer (or, after an interrupted :meth:`Store.compact`, a run's rows twice) until cleanup; keep only
rows whose file is named by a runs row (or use :class:`Store`). Compaction and DuckDB: docs/store.md.

Every file carries ``schema_version`` as a column and in the schema metadata. Readers conform older
files to the current schema: columns they lack are filled with nulls (struct fields too), columns
no longer in the schema are dropped; a file from a newer schema version is refused.
"""
from __future__ import annotations

import os
import re
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelcompat import __version__
from modelcompat.errors import InputError, ModelcompatError
from modelcompat.results.report import Evidence, Finding, Report, Status

SCHEMA_VERSION = 3  # 2: reports.cache_inputs; 3: reports.worker (older files read it as null)

_META_VERSION = b"modelcompat.schema_version"
_META_TABLE = b"modelcompat.table"

# run_id becomes a file and folder name on every filesystem: no separators, no `=` (hive
# partition syntax), and no leading `.`/`_` (pyarrow datasets skip such names).
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_RUN_ID_RE = re.compile(RUN_ID_PATTERN)

_TMP_PREFIX = ".tmp-"
# Shared files written by Store.compact. `~` is outside RUN_ID_PATTERN (no run folder can have this name)
# and, unlike `_`/`.`, not skipped by pyarrow datasets, so raw reads of reports/ still see these rows.
_COMPACTED_DIR = "reports/~compacted"
_READ_THREADS = 8


def _metadata(table: str) -> dict[bytes, bytes]:
    return {_META_VERSION: str(SCHEMA_VERSION).encode(), _META_TABLE: table.encode()}


_TIMESTAMP = pa.timestamp("us", tz="UTC")

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("flow_run_id", pa.string()),
        pa.field("trigger", pa.string(), nullable=False),
        pa.field("matrix", pa.string(), nullable=False),
        pa.field("matrix_path", pa.string()),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("model_sha256", pa.string(), nullable=False),
        pa.field("verdict", pa.string()),
        pa.field("started_at", _TIMESTAMP, nullable=False),
        pa.field("finished_at", _TIMESTAMP, nullable=False),
        pa.field("code_version", pa.string(), nullable=False),
        pa.field("n_reports", pa.int64(), nullable=False),
        # Relative path of this run's reports file: the only part file of the run that is committed.
        pa.field("reports_file", pa.string(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=False),
    ],
    metadata=_metadata("runs"),
)

FINDING_TYPE = pa.struct(
    [
        pa.field("code", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("observed", pa.string()),
        pa.field("expected", pa.string()),
        pa.field("remediation", pa.string()),
        pa.field("step", pa.string()),
    ]
)

REPORTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("cell", pa.string(), nullable=False),
        pa.field("runtime", pa.string(), nullable=False),
        pa.field("runtime_version", pa.string()),
        pa.field("hardware", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("validator", pa.string(), nullable=False),
        pa.field("validator_version", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("cached", pa.bool_(), nullable=False),
        pa.field("cached_from", pa.string()),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("metrics", pa.map_(pa.string(), pa.float64()), nullable=False),
        pa.field("findings", pa.list_(pa.field("item", FINDING_TYPE, nullable=False)), nullable=False),
        # Evidence, flattened so it can be filtered on without unnesting.
        pa.field("artifact_path", pa.string()),
        pa.field("artifact_sha256", pa.string()),
        pa.field("evidence_runtime_version", pa.string()),
        pa.field("environment_fingerprint", pa.string()),
        pa.field("environment", pa.map_(pa.string(), pa.string()), nullable=False),
        # hostname:pid of the Dask worker process that ran the check (null: not run on a worker, or older file).
        pa.field("worker", pa.string()),
        pa.field("cache_key", pa.string()),
        # What the cache key was computed from (input name -> rendered value): lets a plan say what changed.
        pa.field("cache_inputs", pa.map_(pa.string(), pa.string())),
        # Report.started_at is a free-form string; stored as such so load_reports round-trips exactly.
        pa.field("started_at", pa.string()),
        pa.field("schema_version", pa.int32(), nullable=False),
    ],
    metadata=_metadata("reports"),
)


def _read_schema(schema: pa.Schema) -> pa.Schema:
    # Older files may lack columns that are required today: what readers return is all-nullable.
    return pa.schema([f.with_nullable(True) for f in schema])


_RUNS_READ = _read_schema(RUNS_SCHEMA)
_REPORTS_READ = _read_schema(REPORTS_SCHEMA)


class StoreError(ModelcompatError):
    """The store cannot do what was asked (unknown run, unreadable file, newer schema, …)."""


class DuplicateRunError(StoreError):
    """A run with this run_id is already committed; runs are immutable."""


Trigger = Literal["cli", "schedule", "registry_event", "ui"]


class RunRecord(BaseModel):
    """One row of the `runs` table: what a run was, on what, and its verdict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    flow_run_id: str | None = None
    trigger: Trigger
    matrix: str = Field(description="Matrix name, e.g. `default`.")
    matrix_path: str | None = None
    model_name: str
    model_version: str
    model_sha256: str
    verdict: str | None = None
    started_at: datetime
    finished_at: datetime
    code_version: str = __version__
    n_reports: int | None = Field(None, description="Set by the store to the number of reports appended.")

    @field_validator("started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # A naive time is ambiguous once the row leaves this machine: refuse it rather than guess.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return value.astimezone(timezone.utc)


class Compaction(BaseModel):
    """What :meth:`Store.compact` did: the merged file, the runs now pointing at it, the files deleted."""

    model_config = ConfigDict(frozen=True)

    file: str | None = Field(None, description="The compacted file, relative to the store root (None: nothing to do).")
    run_ids: tuple[str, ...] = ()
    rows: int = 0
    removed: tuple[str, ...] = Field((), description="Reports files deleted (relative), no runs row naming them.")


class Store:
    """Runs and reports as Parquet files under one root (local folder or pyarrow/fsspec URI)."""

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        text = os.fspath(uri)
        if "://" in text:
            fs, root = pafs.FileSystem.from_uri(text)
        else:
            # from_uri refuses relative paths; a plain path is always the local filesystem.
            fs, root = pafs.LocalFileSystem(), Path(text).expanduser().resolve().as_posix()
        self.uri = text
        self._fs: pafs.FileSystem = fs
        self._root = root.rstrip("/")
        self._local = isinstance(fs, pafs.LocalFileSystem)

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    # ---------------------------------------------------------------- writing

    def append_run(self, run: RunRecord, reports: Sequence[Report]) -> None:
        """Append one run and its reports atomically; the runs file is written last (commit).

        Raises:
            DuplicateRunError: a run with ``run.run_id`` is already committed.
            StoreError: a report belongs to another run, or ``run.n_reports`` disagrees.
        """
        if self._exists(self._runs_path(run.run_id)):
            raise DuplicateRunError(f"run {run.run_id!r} is already in the store {self.uri}")
        reports_file = self._stage_reports(run.run_id, reports)
        try:
            self._commit_run(run, reports_file, len(reports))
        except BaseException:
            # Lost a race for the run_id, or died: our part is unreferenced, don't leave it behind.
            self._delete_quietly(self._abs(reports_file))
            raise

    def _stage_reports(self, run_id: str, reports: Sequence[Report]) -> str:
        """Write a run's reports file (not yet visible to readers); return its path relative to the root."""
        if not _RUN_ID_RE.match(run_id):
            raise StoreError(f"run_id {run_id!r} does not match {RUN_ID_PATTERN}")
        for report in reports:
            if report.run_id != run_id:
                raise StoreError(
                    f"report {report.cell}/{report.validator} has run_id {report.run_id!r}, "
                    f"not {run_id!r}; a cached report keeps the current run_id and names its origin in cached_from"
                )
        table = pa.Table.from_pylist([_report_to_row(r) for r in reports], schema=REPORTS_SCHEMA)
        # A fresh token per write: two writers racing for one run_id, or a retry after a crash,
        # never overwrite each other's part; the runs row says which part is the committed one.
        relative = f"reports/{run_id}/part-{uuid.uuid4().hex}.parquet"
        self._write_atomic(table, self._abs(relative), exclusive=False)
        return relative

    def _commit_run(self, run: RunRecord, reports_file: str, n_reports: int) -> None:
        """Write the runs file, the commit marker; refuses to replace an existing one."""
        if run.n_reports is not None and run.n_reports != n_reports:
            raise StoreError(f"run {run.run_id!r}: n_reports={run.n_reports} but {n_reports} reports given")
        row = run.model_dump()
        row.update(n_reports=n_reports, reports_file=reports_file, schema_version=SCHEMA_VERSION)
        table = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
        self._write_atomic(table, self._runs_path(run.run_id), exclusive=True)

    def _write_atomic(self, table: pa.Table, final: str, *, exclusive: bool) -> None:
        directory, name = final.rsplit("/", 1)
        tmp = f"{directory}/{_TMP_PREFIX}{uuid.uuid4().hex}-{name}"
        try:
            for attempt in range(3):
                self._fs.create_dir(directory, recursive=True)
                try:
                    pq.write_table(table, tmp, filesystem=self._fs)
                    break
                except FileNotFoundError:
                    # cleanup_orphans removed the (empty) folder between create_dir and write.
                    if attempt == 2:
                        raise
            self._publish(tmp, final, exclusive=exclusive)
        except BaseException:
            self._delete_quietly(tmp)
            raise

    def _publish(self, tmp: str, final: str, *, exclusive: bool) -> None:
        if self._local:
            # Durable before visible: a power cut must not leave a committed name on an empty file.
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                # link() is an atomic create-if-absent: of two writers of one run_id, exactly one wins.
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    raise DuplicateRunError(f"run file {final} already exists in the store {self.uri}") from None
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
            dir_fd = os.open(final.rsplit("/", 1)[0], os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return
        # Object stores: a single PUT is already all-or-nothing; the check-then-move leaves a
        # small race for duplicate run_ids (conditional writes would close it).
        if exclusive and self._exists(final):
            raise DuplicateRunError(f"run file {final} already exists in the store {self.uri}")
        self._fs.move(tmp, final)

    # ---------------------------------------------------------------- check cache

    def save_check(self, report: Report) -> None:
        """Keep one finished check under ``checks/<cache_key>.parquet`` (temp name + rename).

        Written by the flow as each cell finishes, so a run killed before it commits still leaves
        its finished checks for the next run to reuse. Not part of any run: ``runs()``/``reports()``
        never read it, and deleting the folder only costs re-runs. Last writer of a key wins (equal
        keys mean equal inputs, so either report is as good).
        """
        if not report.cache_key or not re.fullmatch(r"[0-9a-f]{16,128}", report.cache_key):
            raise StoreError(f"report {report.cell}/{report.validator} has no usable cache_key")
        table = pa.Table.from_pylist([_report_to_row(report)], schema=REPORTS_SCHEMA)
        self._write_atomic(table, self._abs(f"checks/{report.cache_key}.parquet"), exclusive=False)

    def check(self, cache_key: str) -> Report | None:
        """The check-cache report with this key (its ``run_id`` is the run that produced it), or None."""
        if not re.fullmatch(r"[0-9a-f]{16,128}", cache_key or ""):
            return None
        path = self._abs(f"checks/{cache_key}.parquet")
        try:
            table = _conform(pq.read_table(path, filesystem=self._fs), _REPORTS_READ, path)
        except (OSError, pa.ArrowException, StoreError):  # absent, or unreadable: a cache miss, not an error
            return None
        rows = table.to_pylist(maps_as_pydicts="strict")
        return _row_to_report(rows[0]) if rows else None

    # ---------------------------------------------------------------- reading

    def runs(self) -> pd.DataFrame:
        """Committed runs, one row each, sorted by ``started_at`` (then ``run_id``)."""
        return self._runs_table().to_pandas()

    def reports(self, run_id: str | None = None) -> pd.DataFrame:
        """The long reports table of one committed run, or of all (in run order).

        ``metrics`` and ``environment`` are dicts, ``findings`` lists of dicts; an unknown run gives
        an empty frame.
        """
        if run_id is None:
            runs = self._runs_table()
        else:
            runs = self._run_table(run_id)
            if runs is None:
                return _reports_to_pandas(_REPORTS_READ.empty_table())
        files = runs.column("reports_file").to_pylist()
        ids = runs.column("run_id").to_pylist()
        tables = self._read_many([(f, i) for f, i in zip(files, ids, strict=True)], self._read_reports_file)
        table = pa.concat_tables(tables) if tables else _REPORTS_READ.empty_table()
        return _reports_to_pandas(table)

    def load_reports(self, run_id: str) -> list[Report]:
        """The reports of a committed run as :class:`Report` models, in the order appended."""
        runs = self._run_table(run_id)
        if runs is None:
            raise StoreError(f"no committed run {run_id!r} in the store {self.uri}")
        table = self._read_reports_file((runs.column("reports_file")[0].as_py(), run_id))
        return [_row_to_report(row) for row in table.to_pylist(maps_as_pydicts="strict")]

    def run(self, run_id: str) -> RunRecord | None:
        """The committed run ``run_id`` (reads its one runs file), or None."""
        table = self._run_table(run_id)
        if table is None:
            return None
        row = table.to_pylist()[0]
        return RunRecord(**{k: v for k, v in row.items() if k in RunRecord.model_fields})

    def require_run(self, run_id: str, error: type[InputError] = InputError) -> RunRecord:
        """The committed run ``run_id``; an unknown id is an input error listing the recent runs."""
        record = self.run(run_id)
        if record is None:
            recent = self.runs()["run_id"].tail(5).tolist()
            raise error(f"no committed run {run_id!r} in the store {self.uri}",
                        fix="pick one of the recent runs: " + (", ".join(recent) or "(the store is empty)"))
        return record

    def latest_run(self, model_name: str | None = None) -> RunRecord | None:
        """The committed run with the latest ``started_at`` (of ``model_name`` if given), or None."""
        rows = self._runs_table().to_pylist()
        if model_name is not None:
            rows = [r for r in rows if r["model_name"] == model_name]
        if not rows:
            return None
        row = rows[-1]  # _runs_table is sorted by started_at
        return RunRecord(**{k: v for k, v in row.items() if k in RunRecord.model_fields})

    def _runs_table(self) -> pa.Table:
        paths = [
            info.path
            for info in self._list(f"{self._root}/runs", recursive=False)
            if info.is_file and info.base_name.endswith(".parquet") and not info.base_name.startswith(".")
        ]
        tables = self._read_many(paths, lambda p: _conform(pq.read_table(p, filesystem=self._fs), _RUNS_READ, p))
        if not tables:
            return _RUNS_READ.empty_table()
        return pa.concat_tables(tables).sort_by([("started_at", "ascending"), ("run_id", "ascending")])

    def _run_table(self, run_id: str) -> pa.Table | None:
        if not _RUN_ID_RE.match(run_id):
            return None
        path = self._runs_path(run_id)
        try:
            return _conform(pq.read_table(path, filesystem=self._fs), _RUNS_READ, path)
        except FileNotFoundError:
            return None

    def _read_reports_file(self, item: tuple[str | None, str]) -> pa.Table:
        relative, run_id = item
        if relative is None:
            raise StoreError(f"run {run_id!r} in the store {self.uri} names no reports file")
        path = self._abs(relative)
        for _attempt in range(3):
            try:
                if relative.startswith(f"{_COMPACTED_DIR}/"):
                    table = self._read_compacted(path, run_id)
                else:
                    table = pq.read_table(path, filesystem=self._fs)
                break
            except FileNotFoundError:
                # Store.compact moved this run to a compacted file and deleted the part we were told
                # about: the run's current runs row names the file to read.
                fresh = self._run_table(run_id)
                newer = fresh.column("reports_file")[0].as_py() if fresh is not None else None
                if newer is None or newer == relative:
                    raise StoreError(f"run {run_id!r} is committed but its reports file {path} is missing") from None
                relative, path = newer, self._abs(newer)
        else:
            raise StoreError(f"run {run_id!r}: its reports file kept moving while being read ({path})")
        return _conform(table, _REPORTS_READ, path)

    def _read_compacted(self, path: str, run_id: str) -> pa.Table:
        """One run's rows of a shared compacted file: only the row groups whose run_id range holds it."""
        pf = pq.ParquetFile(path, filesystem=self._fs)
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

    def _read_many(self, items: Sequence[Any], read: Any) -> list[pa.Table]:
        # One small file per run: reading them in parallel hides per-file latency (S3 especially).
        if len(items) <= 1:
            return [read(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(_READ_THREADS, len(items))) as pool:
            return list(pool.map(read, items))

    # ---------------------------------------------------------------- maintenance

    def cleanup_orphans(self, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Delete ``.tmp-*`` files and reports parts no committed run names, if older than ``older_than``.

        The age protects writers still in flight: with ``older_than=0`` run it only when no writer is
        active. Returns the deleted paths.
        """
        cutoff = datetime.now(timezone.utc) - older_than
        # List before reading the runs: a part committed after the listing is young, so it is kept.
        report_infos = self._list(f"{self._root}/reports", recursive=True)
        run_infos = self._list(f"{self._root}/runs", recursive=False)
        committed = {self._abs(f) for f in self._runs_table().column("reports_file").to_pylist() if f}
        removed: list[str] = []
        for info in [*report_infos, *run_infos]:
            if not info.is_file or info.mtime is None or info.mtime > cutoff:
                continue
            stray_tmp = info.base_name.startswith(_TMP_PREFIX)
            orphan_part = info.path.startswith(f"{self._root}/reports/") and info.path not in committed
            if stray_tmp or orphan_part:
                self._delete_quietly(info.path)
                removed.append(info.path)
        if self._local:
            # Object stores have no folders to tidy; local empty run folders would pile up.
            for info in report_infos:
                if info.type == pafs.FileType.Directory and info.mtime is not None and info.mtime <= cutoff:
                    try:
                        os.rmdir(info.path)  # refuses non-empty folders: never races a writer's file
                    except OSError:
                        pass
        return removed

    def compact(self, older_than_runs: int | None = None) -> Compaction:
        """Merge the reports files of committed runs into one ``reports/~compacted/part-*.parquet``.

        ``older_than_runs=N`` leaves the newest N runs (by ``started_at``) as they are; None takes all.
        Runs whose file is shared with a run outside the selection keep it. Already compacted files of
        selected runs are merged again, so repeated compactions keep the file count low.

        Atomic for readers, in three steps: (1) write the merged file (one row group per run) to a
        ``.tmp-`` name and rename it into place; (2) per run, replace its runs row by one naming the
        merged file (temp name + ``os.replace``: a reader sees the old or the new row, both valid);
        (3) only then delete the old files that no runs row names any more. A reader that read an old
        row just before its file was deleted re-reads the row (``_read_reports_file``). A crash leaves at
        most a ``.tmp-`` file (1), an unreferenced merged file (before any row moved), old parts no row
        names (2, 3), or a merged file also holding rows of runs that still point at their old part
        (readers filter by run_id): :meth:`cleanup_orphans` removes what no row names, and ``compact``
        can simply be run again. Run one compaction at a time (it is maintenance, like cleanup).
        """
        if older_than_runs is not None and older_than_runs < 0:
            raise StoreError(f"older_than_runs must be >= 0, not {older_than_runs}")
        every = self._runs_table().to_pylist()
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
        relative = f"{_COMPACTED_DIR}/part-{uuid.uuid4().hex}.parquet"
        final = self._abs(relative)
        directory = final.rsplit("/", 1)[0]
        tmp = f"{directory}/{_TMP_PREFIX}{uuid.uuid4().hex}-{final.rsplit('/', 1)[1]}"
        n_rows = 0
        try:
            self._fs.create_dir(directory, recursive=True)
            with pq.ParquetWriter(tmp, REPORTS_SCHEMA, filesystem=self._fs) as writer:
                for row in chosen:
                    table = self._read_reports_file((row["reports_file"], row["run_id"]))
                    try:
                        table = table.cast(REPORTS_SCHEMA)
                    except ValueError as exc:  # a null in a column required today: refuse, keep everything
                        raise StoreError(f"run {row['run_id']!r} cannot be compacted: {exc}") from exc
                    writer.write_table(table)
                    n_rows += table.num_rows
            self._publish(tmp, final, exclusive=False)
        except BaseException:
            self._delete_quietly(tmp)
            raise

        # (2) repoint each run; a row that changed since the listing is left alone.
        moved = []
        for row in chosen:
            fresh = self._run_table(row["run_id"])
            if fresh is None or fresh.column("reports_file")[0].as_py() != row["reports_file"]:
                continue
            index = fresh.schema.get_field_index("reports_file")
            fresh = fresh.set_column(index, fresh.schema.field(index), pa.array([relative], pa.string()))
            try:
                fresh = fresh.cast(RUNS_SCHEMA)
            except ValueError:  # an older row with a null where a value is required today: keep it nullable
                fresh = fresh.replace_schema_metadata(_metadata("runs"))
            self._write_atomic(fresh, self._runs_path(row["run_id"]), exclusive=False)
            moved.append(row["run_id"])

        # (3) delete the old files no runs row names any more.
        named = set(self._runs_table().column("reports_file").to_pylist())
        removed = []
        for source in sorted(sources - named):
            self._delete_quietly(self._abs(source))
            removed.append(source)
        if self._local:
            for source in removed:
                folder = self._abs(source).rsplit("/", 1)[0]
                if not folder.endswith(_COMPACTED_DIR):
                    try:
                        os.rmdir(folder)  # the run's folder, if now empty
                    except OSError:
                        pass
        return Compaction(file=relative, run_ids=tuple(moved), rows=n_rows, removed=tuple(removed))

    # ---------------------------------------------------------------- paths

    def _abs(self, relative: str) -> str:
        return f"{self._root}/{relative}"

    def _runs_path(self, run_id: str) -> str:
        return self._abs(f"runs/{run_id}.parquet")

    def _exists(self, path: str) -> bool:
        return self._fs.get_file_info(path).type != pafs.FileType.NotFound

    def _list(self, directory: str, *, recursive: bool) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(directory, allow_not_found=True, recursive=recursive)
        return self._fs.get_file_info(selector)

    def _delete_quietly(self, path: str) -> None:
        try:
            self._fs.delete_file(path)
        except (FileNotFoundError, OSError):
            pass


# -------------------------------------------------------------------- rows <-> models

_REPORT_SCALARS = (
    "run_id", "cell", "runtime", "runtime_version", "hardware", "backend", "validator",
    "validator_version", "cached", "cached_from", "duration_s", "cache_key", "started_at",
)
_EVIDENCE_COLUMNS = {
    "artifact_path": "artifact_path",
    "artifact_sha256": "artifact_sha256",
    "runtime_version": "evidence_runtime_version",
    "environment_fingerprint": "environment_fingerprint",
    "environment": "environment",
    "worker": "worker",
}


def _report_to_row(report: Report) -> dict[str, Any]:
    data = report.model_dump(mode="json")
    row: dict[str, Any] = {name: data.pop(name) for name in _REPORT_SCALARS}
    row["status"] = data.pop("status")
    row["metrics"] = data.pop("metrics")
    row["cache_inputs"] = data.pop("cache_inputs")
    row["findings"] = data.pop("findings")
    evidence = data.pop("evidence")
    for field, column in _EVIDENCE_COLUMNS.items():
        row[column] = evidence.pop(field)
    # A field added to Report without a column would be dropped silently: refuse instead.
    if data or evidence:
        raise StoreError(
            f"Report fields {sorted(data) + sorted(evidence)} have no column in the store; "
            "add them to REPORTS_SCHEMA and bump SCHEMA_VERSION"
        )
    row["schema_version"] = SCHEMA_VERSION
    return row


def _row_to_report(row: dict[str, Any]) -> Report:
    evidence = {field: row[column] for field, column in _EVIDENCE_COLUMNS.items()}
    # Columns an older file lacked come back null: fall back to the model's defaults.
    evidence["environment"] = evidence["environment"] or {}
    data = {name: row[name] for name in _REPORT_SCALARS}
    data = {k: v for k, v in data.items() if v is not None or Report.model_fields[k].is_required()}
    return Report(
        **data,
        status=Status(row["status"]),
        metrics=row["metrics"] or {},
        cache_inputs=row.get("cache_inputs") or {},
        findings=tuple(Finding(**f) for f in row["findings"] or ()),
        evidence=Evidence(**evidence),
    )


# -------------------------------------------------------------------- schema evolution


def _file_version(table: pa.Table) -> int:
    meta = table.schema.metadata or {}
    if _META_VERSION in meta:
        return int(meta[_META_VERSION])
    if "schema_version" in table.column_names and table.num_rows:
        return int(table.column("schema_version")[0].as_py())
    return 0


def _conform(table: pa.Table, schema: pa.Schema, source: str) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns: missing ones null, others cast."""
    version = _file_version(table)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{source} has schema_version {version}, newer than this modelcompat reads ({SCHEMA_VERSION}); upgrade modelcompat"
        )
    n = table.num_rows
    columns: list[pa.ChunkedArray | pa.Array] = []
    for field in schema:
        if field.name not in table.column_names:
            if field.name == "schema_version":
                columns.append(pa.array([version] * n, field.type))
            else:
                columns.append(pa.nulls(n, field.type))
            continue
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                # Struct casts match fields by name and fill missing ones with nulls.
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise StoreError(f"{source}: column {field.name!r} ({column.type}) cannot be read as {field.type}: {exc}") from exc
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _reports_to_pandas(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas(maps_as_pydicts="strict")
    # pyarrow gives numpy arrays for list columns; the documented shape is a list of dicts.
    frame["findings"] = [list(v) if v is not None else None for v in frame["findings"]]
    return frame



def report_from_row(row: dict[str, Any]) -> Report:
    """A `reports()` DataFrame row (as a dict) back to a Report model."""
    clean = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in row.items()}
    return _row_to_report(clean)
