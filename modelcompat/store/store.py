"""The report store: Parquet files through pyarrow, one immutable set of files per run.

Layout under the store root (a local folder, or any pyarrow/fsspec URI such as ``s3://bucket/prefix``)::

    runs/<run_id>.parquet                        one row: the run (the commit marker)
    reports/<run_id>/part-<token>.parquet        one row per (cell, validator) of that run
    runs/.tmp-*, reports/<run_id>/.tmp-*         in-flight writes (never read)
    reports/~compacted/part-<token>.parquet      reports of many runs merged by Store.compact (one row group per run)
    checks/<cache_key>.parquet                   the check cache: one finished check each, written as
                                                 it finishes, before its run commits (docs/caching.md)
    <other>/…                                    documents published by other packages (baselines/)

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
Schema and schema evolution: :mod:`modelcompat.store.schema`.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import timedelta

import pandas as pd
import pyarrow as pa

from modelcompat.results.report import Report
from modelcompat.store import check_cache, compaction, reads
from modelcompat.store.errors import DuplicateRunError, RunNotFoundError, StoreError
from modelcompat.store.layout import REPORTS_DIR, document_path, is_hidden, run_file
from modelcompat.store.publish import StoreFS
from modelcompat.store.records import Compaction, RunRecord, Snapshot
from modelcompat.store.rows import report_from_row, report_to_row, reports_to_pandas
from modelcompat.store.schema import (
    REPORTS_READ,
    REPORTS_SCHEMA,
    RUN_ID_PATTERN,
    RUN_ID_RE,
    RUNS_SCHEMA,
    SCHEMA_VERSION,
)


class Store:
    """Runs and reports as Parquet files under one root (local folder or pyarrow/fsspec URI)."""

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        self._files = StoreFS(uri)
        self.uri = self._files.uri

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    # ---------------------------------------------------------------- writing

    def append_run(self, run: RunRecord, reports: Sequence[Report]) -> None:
        """Append one run and its reports atomically; the runs file is written last (commit).

        Raises:
            DuplicateRunError: a run with ``run.run_id`` is already committed.
            StoreError: a report belongs to another run, or ``run.n_reports`` disagrees.
        """
        if self._files.exists(self._files.abs(run_file(run.run_id))):
            raise DuplicateRunError(f"run {run.run_id!r} is already in the store {self.uri}")
        reports_file = self._stage_reports(run.run_id, reports)
        try:
            self._commit_run(run, reports_file, len(reports))
        except BaseException:
            # Lost a race for the run_id, or died: our part is unreferenced, don't leave it behind.
            self._files.delete_quietly(self._files.abs(reports_file))
            raise

    def _stage_reports(self, run_id: str, reports: Sequence[Report]) -> str:
        """Write a run's reports file (not yet visible to readers); return its path relative to the root."""
        if not RUN_ID_RE.match(run_id):
            raise StoreError(f"run_id {run_id!r} does not match {RUN_ID_PATTERN}")
        for report in reports:
            if report.run_id != run_id:
                raise StoreError(
                    f"report {report.cell}/{report.validator} has run_id {report.run_id!r}, "
                    f"not {run_id!r}; a cached report keeps the current run_id and names its origin in cached_from"
                )
        table = pa.Table.from_pylist([report_to_row(r) for r in reports], schema=REPORTS_SCHEMA)
        # A fresh token per write: two writers racing for one run_id, or a retry after a crash,
        # never overwrite each other's part; the runs row says which part is the committed one.
        relative = f"{REPORTS_DIR}/{run_id}/part-{uuid.uuid4().hex}.parquet"
        self._files.write_table(table, self._files.abs(relative), exclusive=False)
        return relative

    def _commit_run(self, run: RunRecord, reports_file: str, n_reports: int) -> None:
        """Write the runs file, the commit marker; refuses to replace an existing one."""
        if run.n_reports is not None and run.n_reports != n_reports:
            raise StoreError(f"run {run.run_id!r}: n_reports={run.n_reports} but {n_reports} reports given")
        row = run.model_dump()
        row.update(n_reports=n_reports, reports_file=reports_file, schema_version=SCHEMA_VERSION)
        table = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
        final = self._files.abs(run_file(run.run_id))
        try:
            # Exclusive: of two writers of one run_id, exactly one wins.
            self._files.write_table(table, final, exclusive=True)
        except FileExistsError:
            raise DuplicateRunError(f"run file {final} already exists in the store {self.uri}") from None

    # ---------------------------------------------------------------- check cache

    def save_check(self, report: Report) -> None:
        """Keep one finished check under ``checks/<cache_key>.parquet`` (see :mod:`.check_cache`)."""
        check_cache.save_check(self._files, report)

    def check(self, cache_key: str) -> Report | None:
        """The check-cache report with this key (its ``run_id`` is the run that produced it), or None."""
        return check_cache.load_check(self._files, cache_key)

    # ---------------------------------------------------------------- reading

    def runs(self) -> pd.DataFrame:
        """Committed runs, one row each, sorted by ``started_at`` (then ``run_id``)."""
        return reads.runs_table(self._files).to_pandas()

    def reports(self, run_id: str | None = None) -> pd.DataFrame:
        """The long reports table of one committed run, or of all (in run order).

        ``metrics`` and ``environment`` are dicts, ``findings`` lists of dicts; an unknown run gives
        an empty frame. To read runs and reports that agree, use :meth:`snapshot` or :meth:`reports_for`.
        """
        if run_id is None:
            runs = reads.runs_table(self._files)
        else:
            runs = reads.run_table(self._files, run_id)
            if runs is None:
                return reports_to_pandas(REPORTS_READ.empty_table())
        return reports_to_pandas(reads.reports_of(self._files, runs))

    def reports_for(self, runs: pd.DataFrame) -> pd.DataFrame:
        """The reports of exactly the runs rows given (a subset of a :meth:`runs` frame), in their order.

        Reads the files those rows name, without listing the runs again: a run committed since that
        listing is not included, so every report returned belongs to a row the caller holds.
        """
        missing = {"run_id", "reports_file"} - set(runs.columns)
        if missing:
            raise StoreError(f"reports_for needs rows of Store.runs(); columns {sorted(missing)} are missing")
        table = pa.table({"run_id": pa.array(runs["run_id"].tolist(), pa.string()),
                          "reports_file": pa.array(runs["reports_file"].tolist(), pa.string())})
        return reports_to_pandas(reads.reports_of(self._files, table))

    def snapshot(self) -> Snapshot:
        """Committed runs and their reports from one listing of runs/: the two always agree."""
        runs = reads.runs_table(self._files)
        return Snapshot(runs=runs.to_pandas(), reports=reports_to_pandas(reads.reports_of(self._files, runs)))

    def load_reports(self, run_id: str) -> list[Report]:
        """The reports of a committed run as :class:`Report` models, in the order appended."""
        runs = reads.run_table(self._files, run_id)
        if runs is None:
            raise self._not_found(run_id)
        table = reads.read_reports_file(self._files, runs.column("reports_file")[0].as_py(), run_id)
        return [report_from_row(row) for row in table.to_pylist(maps_as_pydicts="strict")]

    def run(self, run_id: str) -> RunRecord | None:
        """The committed run ``run_id`` (reads its one runs file), or None."""
        table = reads.run_table(self._files, run_id)
        return None if table is None else RunRecord.from_row(table.to_pylist()[0])

    def require_run(self, run_id: str) -> RunRecord:
        """The committed run ``run_id``.

        Raises:
            RunNotFoundError: no such run; the message names the store and the recent run ids.
        """
        record = self.run(run_id)
        if record is None:
            raise self._not_found(run_id)
        return record

    def _not_found(self, run_id: str) -> RunNotFoundError:
        return RunNotFoundError(self.uri, run_id, reads.runs_table(self._files).column("run_id").to_pylist()[-5:])

    def latest_run(self, model_name: str | None = None) -> RunRecord | None:
        """The committed run with the latest ``started_at`` (of ``model_name`` if given), or None."""
        rows = reads.runs_table(self._files).to_pylist()
        if model_name is not None:
            rows = [r for r in rows if r["model_name"] == model_name]
        return RunRecord.from_row(rows[-1]) if rows else None  # runs_table is sorted by started_at

    # ---------------------------------------------------------------- documents (baselines, …)

    def publish_file(self, relative_path: str, data: bytes) -> str:
        """Publish a new immutable document at ``relative_path``, atomically and durably; return its location.

        Readers see the whole file or nothing. Refuses to replace an existing file.

        Raises:
            StoreError: the path is outside the root, hidden, under the store's own tables, or taken.
        """
        final = self._files.abs(document_path(relative_path))
        try:
            self._files.write_bytes(final, data, exclusive=True)
        except FileExistsError:
            raise StoreError(f"{final} already exists in the store {self.uri}; documents are immutable") from None
        return final

    def list_files(self, folder: str, suffix: str = "") -> list[str]:
        """Published documents directly under ``folder`` whose name ends with ``suffix``, sorted (relative paths).

        In-flight and hidden files (``.tmp-…``) are never listed.
        """
        prefix = document_path(folder.rstrip("/"))
        infos = self._files.list(self._files.abs(prefix), recursive=False)
        return sorted(f"{prefix}/{i.base_name}" for i in infos
                      if i.is_file and i.base_name.endswith(suffix) and not is_hidden(i.base_name))

    def read_file(self, relative_path: str) -> bytes:
        """The bytes of a published document."""
        return self._files.read_bytes(self._files.abs(document_path(relative_path)))

    def location(self, relative_path: str) -> str:
        """Where ``relative_path`` is (a local path or the filesystem's path), for messages."""
        return self._files.abs(relative_path)

    # ---------------------------------------------------------------- maintenance

    def cleanup_orphans(self, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Delete stray ``.tmp-*`` files and unreferenced reports parts (see :func:`.compaction.cleanup_orphans`)."""
        return compaction.cleanup_orphans(self._files, older_than)

    def compact(self, older_than_runs: int | None = None) -> Compaction:
        """Merge committed runs' reports files into one, atomically for readers (see :func:`.compaction.compact`)."""
        return compaction.compact(self._files, older_than_runs)
