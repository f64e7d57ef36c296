"""Store compaction (atomic for readers, crash-safe) and reading the store as it is with DuckDB."""
from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from modelcompat.store import SCHEMA_VERSION, Store
from support.store_records import (
    T0,
    assert_every_run_complete,
    files_under,
    make_report,
    make_run,
    spawn_child,
)

N_RUNS, N_REPORTS = 30, 12


def build(root: Path, n_runs: int = N_RUNS, n_reports: int = N_REPORTS) -> Store:
    store = Store(root)
    for k in range(n_runs):
        run_id = f"run-{k:02d}"
        store.append_run(make_run(run_id, T0 + timedelta(minutes=k)), [make_report(run_id, i) for i in range(n_reports)])
    return store


def expected(run_id: str) -> list:
    return [make_report(run_id, i) for i in range(N_REPORTS)]


def reports_files(root: Path) -> set[Path]:
    return {p for p in root.glob("reports/**/*.parquet")}


def referenced(store: Store, root: Path) -> set[Path]:
    return {root / f for f in store.runs()["reports_file"]}


def test_compact_keeps_every_run_and_merges_files(tmp_path: Path) -> None:
    store = build(tmp_path)
    run_ids = list(store.runs()["run_id"])
    before = {r: store.load_reports(r) for r in run_ids}
    frame_before = store.reports()
    assert len(reports_files(tmp_path)) == N_RUNS

    done = store.compact(older_than_runs=5)
    assert done.file is not None and done.file.startswith("reports/~compacted/part-")
    assert list(done.run_ids) == run_ids[:-5] and done.rows == (N_RUNS - 5) * N_REPORTS
    assert len(done.removed) == N_RUNS - 5
    assert len(reports_files(tmp_path)) == 6  # the merged file + the 5 newest runs' parts
    assert {r: store.load_reports(r) for r in run_ids} == before
    # one row group per run: a reader of one run reads only its own group
    assert pq.ParquetFile(tmp_path / done.file).metadata.num_row_groups == N_RUNS - 5
    assert pq.read_schema(tmp_path / "runs/run-00.parquet").metadata[b"modelcompat.schema_version"] == str(SCHEMA_VERSION).encode()

    again = store.compact()  # merges the compacted file and the 5 parts into one
    assert len(again.run_ids) == N_RUNS and tmp_path / done.file not in reports_files(tmp_path)
    assert reports_files(tmp_path) == {tmp_path / again.file} == referenced(store, tmp_path)
    assert {r: store.load_reports(r) for r in run_ids} == before
    pd.testing.assert_frame_equal(store.reports(), frame_before)
    assert_every_run_complete(store)
    assert not [p for p in tmp_path.glob("reports/*") if p.is_dir() and p.name != "~compacted"]  # run folders gone

    assert store.compact().file is None  # one file already: nothing to do
    # new runs keep landing as their own parts next to the compacted file
    store.append_run(make_run("late", T0 + timedelta(days=1)), expected("late"))
    assert store.load_reports("late") == expected("late")
    # raw reads still see every row once: pyarrow skips `_`/`.` names, not `~`
    assert ds.dataset(tmp_path / "reports", format="parquet").to_table().num_rows == (N_RUNS + 1) * N_REPORTS


def test_reader_in_another_process_during_compaction(tmp_path: Path) -> None:
    store = build(tmp_path)
    stop = tmp_path / "stop-reader"
    reader = spawn_child(
        f"store = Store({str(tmp_path)!r})\n"
        "import os\n"
        "seen = []\n"
        "while True:\n"
        f"    done = os.path.exists({str(stop)!r})\n"
        "    assert_every_run_complete(store)\n"
        "    runs = store.runs()\n"
        "    for run_id in runs['run_id']:\n"
        f"        assert store.load_reports(run_id) == [make_report(run_id, i) for i in range({N_REPORTS})], run_id\n"
        "    seen.append((len(runs), runs['reports_file'].nunique()))\n"
        "    if len(seen) == 1:\n"
        "        print('ready', flush=True)\n"
        "    if done:\n"
        "        break\n"
        "print(seen[0][0], seen[0][1], seen[-1][0], seen[-1][1], flush=True)\n"
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready", reader.stderr.read() if reader.stderr else ""
    try:
        # Several compactions (each: write, repoint 5..30 runs, delete) while the reader loops.
        for keep in (25, 20, 15, 10, 5, 0, None):
            store.compact(older_than_runs=keep)
        for k in range(N_RUNS, N_RUNS + 5):
            run_id = f"run-{k:02d}"
            store.append_run(make_run(run_id, T0 + timedelta(minutes=k)), [make_report(run_id, i) for i in range(N_REPORTS)])
        store.compact()
    finally:
        stop.touch()
    out, err = reader.communicate(timeout=300)
    assert reader.returncode == 0, err
    # Causal evidence that every check ran across the compactions: the reader's first pass (before the
    # first compaction started) saw 30 runs in 30 parts, its last (begun after the final one) 35 in one file.
    assert [int(x) for x in out.split()] == [N_RUNS, N_RUNS, N_RUNS + 5, 1]
    assert len(reports_files(tmp_path)) == 1
    for run_id in store.runs()["run_id"]:
        assert store.load_reports(run_id) == expected(run_id)


# A compaction that dies after its merged file is in place and `after` runs rows were moved: a real
# process, SIGKILLed by itself at that point (the writes before it are the real ones).
_CRASHING_COMPACTION = """
import os, signal
from modelcompat.store.publish import StoreFS
write_table = StoreFS.write_table
moved = 0
def crashing(self, table, final, *, exclusive):
    global moved
    if '/runs/' in final and moved == {after}:
        os.kill(os.getpid(), signal.SIGKILL)
    write_table(self, table, final, exclusive=exclusive)
    if '/runs/' in final:
        moved += 1
StoreFS.write_table = crashing
Store({root!r}).compact()
"""


def crash_compaction(root: Path, after: int) -> None:
    child = spawn_child(_CRASHING_COMPACTION.format(root=str(root), after=after))
    child.wait(timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""


def test_crash_before_any_run_moved_leaves_an_unreferenced_file(tmp_path: Path) -> None:
    store = build(tmp_path)
    parts = reports_files(tmp_path)
    crash_compaction(tmp_path, after=0)
    merged = reports_files(tmp_path) - parts
    assert len(merged) == 1 and merged.isdisjoint(referenced(store, tmp_path))
    assert_every_run_complete(store)
    assert all(store.load_reports(r) == expected(r) for r in store.runs()["run_id"])
    assert store.cleanup_orphans() == []  # young: could be a compaction still at work
    assert store.cleanup_orphans(timedelta(0)) == [str(p) for p in merged]
    assert reports_files(tmp_path) == parts == referenced(store, tmp_path)


def test_crash_halfway_through_repointing_then_cleanup_and_rerun(tmp_path: Path) -> None:
    store = build(tmp_path)
    parts = reports_files(tmp_path)
    crash_compaction(tmp_path, after=N_RUNS // 2)
    runs = store.runs()
    merged = reports_files(tmp_path) - parts
    assert len(merged) == 1
    moved = runs[runs["reports_file"].str.startswith("reports/~compacted/")]
    assert len(moved) == N_RUNS // 2
    # No old part was deleted yet, and every run, moved or not, reads whole and equal.
    assert parts <= reports_files(tmp_path)
    assert_every_run_complete(store)
    assert all(store.load_reports(r) == expected(r) for r in runs["run_id"])
    # The moved runs' old parts are the orphans; the merged file is named by runs rows and stays.
    orphans = set(map(Path, store.cleanup_orphans(timedelta(0))))
    assert len(orphans) == N_RUNS // 2 and orphans.isdisjoint(referenced(store, tmp_path))
    assert reports_files(tmp_path) == referenced(store, tmp_path)
    assert all(store.load_reports(r) == expected(r) for r in runs["run_id"])
    # Running the compaction again finishes the job.
    store.compact()
    assert len(reports_files(tmp_path)) == 1 == len(referenced(store, tmp_path))
    assert all(store.load_reports(r) == expected(r) for r in runs["run_id"])


def test_cli_store_compact(tmp_path: Path) -> None:
    store = build(tmp_path, n_runs=6)
    cmd = [sys.executable, "-m", "modelcompat.cli", "store", "compact", "--store", str(tmp_path)]
    done = subprocess.run([*cmd, "--older-than-runs", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "compacted 4 runs (48 report rows)" in done.stdout
    assert len(reports_files(tmp_path)) == 3
    assert all(store.load_reports(r) == [make_report(r, i) for i in range(N_REPORTS)] for r in store.runs()["run_id"])


def test_duckdb_reads_the_store_as_it_is(tmp_path: Path) -> None:
    store = build(tmp_path, n_runs=6)
    store.compact(older_than_runs=2)  # a mix of a compacted file and per-run parts
    root = tmp_path.as_posix()
    reports_glob = f"{root}/reports/**/*.parquet"
    assert duckdb.sql(f"select count(*) from read_parquet('{reports_glob}')").fetchall()[0] == (6 * N_REPORTS,)
    # Join with runs; matching the file name to reports_file keeps only committed rows even when a
    # crashed writer or compaction left a stray file behind.
    rows = duckdb.sql(f"""
        select runs.run_id, runs.model_name, count(*) as n, sum(case when r.status = 'fail' then 1 else 0 end) as fails
        from read_parquet('{reports_glob}', filename = true) as r
        join read_parquet('{root}/runs/*.parquet') as runs
          on r.run_id = runs.run_id and r.filename = '{root}/' || runs.reports_file
        group by all order by runs.run_id
    """).fetchall()
    frame = store.reports()
    assert [(r[0], r[2]) for r in rows] == [(f"run-{k:02d}", N_REPORTS) for k in range(6)]
    assert {r[1] for r in rows} == {"demo"}
    assert sum(r[3] for r in rows) == int((frame["status"] == "fail").sum())
    # metrics (a Parquet map) reads as a DuckDB map
    p95 = duckdb.sql(f"select sum(metrics['p95_latency_ms']) from read_parquet('{reports_glob}')").fetchall()[0][0]
    assert abs(p95 - sum(m["p95_latency_ms"] for m in frame["metrics"])) < 1e-9
    assert files_under(tmp_path)  # the store was not touched by reading
