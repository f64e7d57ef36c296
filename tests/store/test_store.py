"""The Parquet store: round-trips, commit-marker atomicity under SIGKILL, concurrent writers, old schemas."""
from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from modelcompat.results.report import Report, Status
from modelcompat.store import (
    REPORTS_SCHEMA,
    RUNS_SCHEMA,
    SCHEMA_VERSION,
    DuplicateRunError,
    Store,
    StoreError,
)
from support.store_records import (
    T0,
    append_runs,
    assert_every_run_complete,
    files_under,
    make_report,
    make_run,
    spawn_child,
)


def test_reports_round_trip_to_equal_models(tmp_path: Path) -> None:
    full = make_report("r1", 4)
    assert full.model_fields_set == set(Report.model_fields)  # the round-trip covers every field
    minimal = Report(
        run_id="r1", cell="c", runtime="rt", runtime_version=None, hardware="cpu", backend="b",
        validator="v", validator_version="0", status=Status.SKIPPED,
    )
    reports = [full, minimal, *(make_report("r1", i) for i in range(7))]
    store = Store(tmp_path)
    store.append_run(make_run("r1"), reports)

    assert store.load_reports("r1") == reports
    frame = store.reports("r1")
    assert len(frame) == len(reports)
    row = frame.iloc[0]
    assert row["metrics"] == {"p95_latency_ms": 6.0, "max_abs_diff": 1e-7}
    assert row["findings"] == [f.model_dump(mode="json") for f in full.findings]
    assert row["environment"] == {"python": "3.11.9", "onnxruntime": "1.4.0"}
    assert row["status"] == full.status.value and row["schema_version"] == SCHEMA_VERSION
    assert frame.iloc[1]["findings"] == [] and frame.iloc[1]["metrics"] == {}
    assert store.latest_run() == make_run("r1").model_copy(update={"n_reports": len(reports)})


def test_two_runs_sorted_by_start_and_filtered(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    assert store.runs().empty and store.reports().empty and store.latest_run() is None
    store.append_run(make_run("late", T0 + timedelta(hours=1), model_name="a"), [make_report("late", i) for i in range(3)])
    store.append_run(make_run("early", T0, model_name="b"), [make_report("early", i) for i in range(2)])

    runs = store.runs()
    assert list(runs["run_id"]) == ["early", "late"]
    assert list(runs["n_reports"]) == [2, 3]
    assert str(runs["started_at"].dtype) == "datetime64[us, UTC]"
    assert list(store.reports()["run_id"]) == ["early"] * 2 + ["late"] * 3
    assert list(store.reports("late")["cell"]) == [r.cell for r in (make_report("late", i) for i in range(3))]
    assert store.reports("missing").empty
    assert list(store.reports("missing").columns) == REPORTS_SCHEMA.names
    latest = store.latest_run()
    assert latest is not None and latest.run_id == "late"
    latest_b = store.latest_run("b")
    assert latest_b is not None and latest_b.run_id == "early"
    assert store.latest_run("nope") is None
    with pytest.raises(StoreError):
        store.load_reports("missing")
    store.append_run(make_run("empty", T0 + timedelta(hours=2), model_name="a"), [])
    assert store.load_reports("empty") == [] and store.reports("empty").empty
    assert list(store.runs()["n_reports"]) == [2, 3, 0]


def test_duplicate_run_id_is_refused_and_leaves_no_files(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append_run(make_run("r1"), [make_report("r1", 0)])
    before = files_under(tmp_path)
    with pytest.raises(DuplicateRunError):
        store.append_run(make_run("r1", T0 + timedelta(days=1)), [make_report("r1", 1), make_report("r1", 2)])
    assert files_under(tmp_path) == before
    assert store.load_reports("r1") == [make_report("r1", 0)]


def test_commit_race_for_one_run_id_has_one_winner(tmp_path: Path) -> None:
    # Two writers that both passed the existence check: the exclusive commit lets only one through.
    store = Store(tmp_path)
    part_a = store._stage_reports("r1", [make_report("r1", 0)])
    part_b = store._stage_reports("r1", [make_report("r1", 1), make_report("r1", 2)])
    store._commit_run(make_run("r1"), part_a, 1)
    with pytest.raises(DuplicateRunError):
        store._commit_run(make_run("r1"), part_b, 2)
    assert store.load_reports("r1") == [make_report("r1", 0)]
    assert not list(tmp_path.rglob(".tmp-*"))
    # The loser's part is an orphan: invisible to readers, removed by cleanup.
    assert store.cleanup_orphans(timedelta(0)) == [str(tmp_path / part_b)]
    assert store.load_reports("r1") == [make_report("r1", 0)]


def test_invalid_input_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(StoreError, match="run_id"):
        store.append_run(make_run("r1"), [make_report("other", 0)])
    with pytest.raises(StoreError, match="n_reports"):
        store.append_run(make_run("r2", n_reports=5), [make_report("r2", 0)])
    with pytest.raises(ValidationError, match="timezone-aware"):
        make_run("r3", datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        make_run("../escape")
    assert store.runs().empty and not list(tmp_path.rglob("*.parquet"))
    # Any offset is accepted and normalised to UTC.
    paris = timezone(timedelta(hours=1))
    assert make_run("r4", datetime(2026, 1, 1, 13, tzinfo=paris)).started_at == T0


def test_writer_killed_between_reports_and_commit(tmp_path: Path) -> None:
    child = spawn_child(
        f"store = Store({str(tmp_path)!r})\n"
        "print(store._stage_reports('r1', [make_report('r1', i) for i in range(50)]), flush=True)\n"
        "import time; time.sleep(600)\n"
        "store._commit_run(make_run('r1'), 'never', 50)\n"
    )
    assert child.stdout is not None
    staged = child.stdout.readline().strip()
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert staged, child.stderr.read() if child.stderr else ""
    orphan = tmp_path / staged
    assert orphan.is_file()

    store = Store(tmp_path)
    assert store.runs().empty and store.reports().empty and store.reports("r1").empty
    assert store.latest_run() is None
    with pytest.raises(StoreError):
        store.load_reports("r1")
    assert store.cleanup_orphans() == []  # younger than an hour: could be a writer still at work
    assert orphan.is_file()
    assert store.cleanup_orphans(timedelta(0)) == [str(orphan)]
    assert not orphan.exists()
    # A retry of the crashed run under the same run_id goes through.
    store.append_run(make_run("r1"), [make_report("r1", 0)])
    assert store.load_reports("r1") == [make_report("r1", 0)]


def test_writer_killed_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(20260101)
    for attempt in range(5):
        child = spawn_child(
            f"store = Store({str(tmp_path)!r})\n"
            f"reports = [make_report('x', i) for i in range(1000)]\n"
            "print('ready', flush=True)\n"
            "k = 0\n"
            "while True:\n"
            f"    run_id = 'a{attempt}-' + str(k)\n"
            "    store.append_run(make_run(run_id), [r.model_copy(update={'run_id': run_id}) for r in reports])\n"
            "    k += 1\n"
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
        try:
            child.wait(timeout=rng.uniform(0.0, 1.0))  # just a pause: the writer never exits by itself
        except subprocess.TimeoutExpired:
            pass
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert_every_run_complete(Store(tmp_path))

    store = Store(tmp_path)
    committed = set(store.runs()["run_id"])
    store.cleanup_orphans(timedelta(0))
    assert not list(tmp_path.rglob(".tmp-*"))
    referenced = {tmp_path / f for f in store.runs()["reports_file"]}
    assert set(tmp_path.glob("reports/*/*")) == referenced
    assert set(store.runs()["run_id"]) == committed
    assert_every_run_complete(store)


def test_concurrent_processes_lose_no_rows(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=append_runs, args=(str(tmp_path), name, 20, 7)) for name in ("p", "q")]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert [w.exitcode for w in writers] == [0, 0]

    store = Store(tmp_path)
    runs = store.runs()
    assert sorted(runs["run_id"]) == sorted(f"{p}-{k}" for p in ("p", "q") for k in range(20))
    assert len(store.reports()) == 40 * 7
    assert_every_run_complete(store)
    assert store.load_reports("q-13") == [make_report("q-13", i) for i in range(7)]


def _write_v0(path: Path, table: pa.Table, drop: list[str]) -> None:
    """Write `table` as an imagined version 0: some columns absent, version 0 in column and metadata."""
    table = table.drop_columns(drop)
    table = table.set_column(
        table.column_names.index("schema_version"), "schema_version", pa.array([0] * table.num_rows, pa.int32())
    )
    table = table.replace_schema_metadata({b"modelcompat.schema_version": b"0"})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_older_schema_version_reads_with_nulls(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append_run(make_run("new", T0 + timedelta(hours=1)), [make_report("new", 1)])

    old_reports = [make_report("old", 1), make_report("old", 2)]
    reports = pa.Table.from_pylist(
        [
            {**r.model_dump(mode="json"), **{  # the store's own rows, minus what v0 lacked
                "metrics": r.metrics,
                "artifact_path": r.evidence.artifact_path,
                "artifact_sha256": r.evidence.artifact_sha256,
                "evidence_runtime_version": r.evidence.runtime_version,
                "environment_fingerprint": r.evidence.environment_fingerprint,
                "environment": r.evidence.environment,
                "schema_version": SCHEMA_VERSION,
            }}
            for r in old_reports
        ],
        schema=REPORTS_SCHEMA,
    )
    # v0 findings had no `step` field either.
    old_finding = pa.struct([(n, pa.string()) for n in ("code", "severity", "message", "observed", "expected", "remediation")])
    reports = reports.set_column(
        reports.column_names.index("findings"), "findings",
        pa.array([[{k: v for k, v in f.items() if k != "step"} for f in row] for row in reports.column("findings").to_pylist()],
                 pa.list_(old_finding)),
    )
    _write_v0(tmp_path / "reports/old/part-0.parquet", reports, drop=["cache_key", "cached"])
    run_row = {**make_run("old").model_dump(), "n_reports": 2, "reports_file": "reports/old/part-0.parquet", "schema_version": 1}
    _write_v0(tmp_path / "runs/old.parquet", pa.Table.from_pylist([run_row], schema=RUNS_SCHEMA), drop=["flow_run_id"])

    runs = store.runs()
    assert list(runs["run_id"]) == ["old", "new"]
    assert list(runs["schema_version"]) == [0, SCHEMA_VERSION]
    assert runs["flow_run_id"].isna().all()
    frame = store.reports("old")
    assert frame["cache_key"].isna().all() and frame["cached"].isna().all()
    assert list(frame["schema_version"]) == [0, 0]
    assert frame.iloc[1]["findings"][0]["step"] is None
    # Missing fields fall back to the model's defaults (cached=False, no cache key, no step).
    expected = [
        r.model_copy(update={
            "cache_key": None, "cached": False,
            "findings": tuple(f.model_copy(update={"step": None}) for f in r.findings),
        })
        for r in old_reports
    ]
    assert store.load_reports("old") == expected
    assert len(store.reports()) == 3
    latest_old = store.latest_run("demo")
    assert latest_old is not None and latest_old.run_id == "new"


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append_run(make_run("r1"), [make_report("r1", 0)])
    path = tmp_path / "runs/r1.parquet"
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"modelcompat.schema_version": b"99"}), path)
    with pytest.raises(StoreError, match="newer"):
        store.runs()


def test_folders_read_as_they_are_with_pandas_and_pyarrow(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append_run(make_run("r1"), [make_report("r1", i) for i in range(4)])
    store.append_run(make_run("2", T0 + timedelta(hours=1)), [make_report("2", i) for i in range(3)])
    # An in-flight write must not break (or show up in) a plain folder read.
    (tmp_path / "reports/r1/.tmp-0123-part-x.parquet").write_bytes(b"half a file")
    (tmp_path / "runs/.tmp-0123-r9.parquet").write_bytes(b"")

    reports = pd.read_parquet(tmp_path / "reports")
    assert len(reports) == 7
    assert sorted(reports["run_id"].unique()) == ["2", "r1"]  # a column, not an inferred partition
    runs = pd.read_parquet(tmp_path / "runs")
    assert sorted(runs["run_id"]) == ["2", "r1"]
    table = ds.dataset(tmp_path / "reports", format="parquet").to_table()
    assert table.num_rows == 7 and table.schema.field("metrics").type == REPORTS_SCHEMA.field("metrics").type
    assert pq.read_schema(tmp_path / "runs/r1.parquet").metadata[b"modelcompat.schema_version"] == str(SCHEMA_VERSION).encode()


def test_store_accepts_uris_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Store(f"file://{tmp_path}").append_run(make_run("r1"), [make_report("r1", 0)])
    monkeypatch.chdir(tmp_path)
    assert list(Store(".").runs()["run_id"]) == ["r1"]
    assert os.path.isfile(tmp_path / "runs/r1.parquet")


def test_documents_are_published_whole_listed_and_immutable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    where = store.publish_file("baselines/demo/0001.json", b'{"a": 1}\n')
    assert where == str(tmp_path / "baselines/demo/0001.json") == store.location("baselines/demo/0001.json")
    store.publish_file("baselines/demo/0002.json", b"{}")
    (tmp_path / "baselines/demo/.tmp-dead-0003.json.tmp").write_bytes(b'{"half')  # a killed writer's leftover
    (tmp_path / "baselines/demo/notes.txt").write_text("x")
    assert store.list_files("baselines/demo", suffix=".json") == ["baselines/demo/0001.json", "baselines/demo/0002.json"]
    assert store.list_files("baselines/absent") == []
    assert store.read_file("baselines/demo/0001.json") == b'{"a": 1}\n'
    with pytest.raises(StoreError, match="already exists.*immutable"):
        store.publish_file("baselines/demo/0001.json", b"{}")
    with pytest.raises(StoreError, match="tables own"):
        store.publish_file("runs/r1.parquet", b"")
    assert store.read_file("baselines/demo/0001.json") == b'{"a": 1}\n' and store.runs().empty


def test_the_whole_store_on_an_object_store_filesystem() -> None:
    # pyarrow's in-memory filesystem: the temp-name + move path that S3/GCS take, no local fsync/link.
    store = Store("mock:///bucket/store")
    store.append_run(make_run("r1"), [make_report("r1", i) for i in range(3)])
    with pytest.raises(DuplicateRunError):
        store.append_run(make_run("r1"), [make_report("r1", 0)])
    assert store.load_reports("r1") == [make_report("r1", i) for i in range(3)]
    store.append_run(make_run("r2", T0 + timedelta(hours=1)), [make_report("r2", 0)])
    assert store.compact().run_ids == ("r1", "r2")
    assert store.load_reports("r1") == [make_report("r1", i) for i in range(3)]
    store.publish_file("baselines/demo/1.json", b"{}")
    assert store.list_files("baselines/demo") == ["baselines/demo/1.json"]
    assert_every_run_complete(store)
