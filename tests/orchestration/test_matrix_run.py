"""A check-matrix run's Prefect-free steps, on the demo package with the real harness and a real store."""
from __future__ import annotations

from pathlib import Path

from modelcompat.execution.harness import check_cell
from modelcompat.orchestration.matrix_run import (
    cell_failed_reports,
    finish_run,
    hand_over,
    keep_cell,
    prepare_run,
)
from modelcompat.settings import matrices_dir
from modelcompat.store import Store

CELL = "host-ort/cpu/ort-cpu"


def _args(demo_package, store: Path, **over) -> dict:
    return {"matrix": str(matrices_dir() / "smoke.yaml"), "model": str(demo_package.root),
            "validators": ["integrity", "loadability"], "cells": "host-ort/*", "store": str(store), "params": None,
            "force": False, "force_validators": None, "offered": {"local": {}}, **over}


def test_a_run_finished_without_prefect_is_stored_and_the_next_one_reuses_every_check(demo_package, tmp_path) -> None:
    store_dir = tmp_path / "store"
    run = prepare_run(**_args(demo_package, store_dir))
    assert [job.cell.id for job in run.jobs] == [CELL]
    assert {(p.cell.id, p.validator, p.decision) for p in run.plan} == {(CELL, "integrity", "run"),
                                                                        (CELL, "loadability", "run")}
    for job in run.jobs:
        keep_cell(run, job, check_cell(job))
    assert len(list((store_dir / "checks").glob("*.parquet"))) == 2  # kept as soon as the cell was done
    first = finish_run(run, trigger="cli", flow_run_id=None)
    assert first.summary.verdict == "pass" and first.summary.flow_run_id is None
    assert [(r.validator, r.status.value, r.cached) for r in first.reports] == [("integrity", "pass", False),
                                                                                ("loadability", "pass", False)]
    stored = Store(str(store_dir))
    assert stored.run(run.run_id).flow_run_id is None  # the run's own record: it ran without Prefect

    again = prepare_run(**_args(demo_package, store_dir))
    assert not again.jobs and {p.decision for p in again.plan} == {"cached"}
    second = finish_run(again, trigger="cli", flow_run_id=None)
    assert {(r.cached, r.cached_from, r.run_id) for r in second.reports} == {(True, run.run_id, again.run_id)}
    assert second.summary.plan == {"run": 0, "cached": 2, "skipped": 0}
    assert sorted(Store(str(store_dir)).runs()["run_id"]) == sorted([run.run_id, again.run_id])
    assert {r.cached for r in Store(str(store_dir)).load_reports(again.run_id)} == {True}


def test_a_handed_over_run_is_taken_once_and_only_with_the_same_arguments(demo_package, tmp_path) -> None:
    args = _args(demo_package, tmp_path / "store")
    run = prepare_run(**args, run_id="20261204T000000Z-aaaaaa")
    hand_over(run)
    assert prepare_run(**args, run_id=run.run_id) is run  # the flow plans nothing again
    again = prepare_run(**args, run_id=run.run_id)  # taken once: a later call plans afresh
    assert again is not run and again.run_id == run.run_id

    hand_over(run)
    other = prepare_run(**{**args, "validators": ["integrity"]}, run_id=run.run_id)
    assert other is not run and {p.validator for p in other.plan} == {"integrity"}


def test_a_cell_whose_job_died_reports_every_check_as_an_error_with_why(demo_package, tmp_path) -> None:
    run = prepare_run(**_args(demo_package, tmp_path / "store"))
    (job,) = run.jobs
    reports = cell_failed_reports(run, job, RuntimeError("worker lost"))
    assert [(r.validator, r.status.value) for r in reports] == [("integrity", "error"), ("loadability", "error")]
    assert {r.findings[0].code for r in reports} == {"cell.task_failed"}
    assert "worker lost" in reports[0].findings[0].message and CELL in reports[0].findings[0].remediation
