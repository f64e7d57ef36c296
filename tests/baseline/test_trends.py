"""Metric history: one row per (run, cell, validator, metric) of a model's latest runs, filtered."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from modelcompat.baseline.trends import COLUMNS, metric_history
from modelcompat.results.report import Report, Status
from modelcompat.store import Store
from support.store_records import T0, make_run


def _report(run_id: str, cell: str, validator: str, **metrics: float) -> Report:
    return Report(run_id=run_id, cell=cell, runtime=cell.split("/")[0], runtime_version="1", hardware="cpu",
                  backend="b", validator=validator, validator_version="1", status=Status.PASS, metrics=metrics)


def _store(root: Path) -> Store:
    store = Store(root)
    for k in range(4):
        run_id = f"r{k}"
        model = "demo" if k != 2 else "other"
        store.append_run(make_run(run_id, T0 + timedelta(minutes=k), model_name=model), [
            _report(run_id, "ort/cpu/b", "latency", p50_latency_ms=1.0 + k, p95_latency_ms=2.0 + k),
            _report(run_id, "trt/gpu/b", "latency", p50_latency_ms=0.5),
            _report(run_id, "ort/cpu/b", "loadability"),
        ])
    return store


def test_history_of_one_model_oldest_first(tmp_path: Path) -> None:
    store = _store(tmp_path)
    frame = metric_history(store, "demo")
    assert list(frame.columns) == COLUMNS
    assert list(frame["run_id"].unique()) == ["r0", "r1", "r3"]  # r2 is another model's
    assert len(frame) == 3 * 3  # two latency metrics on ort, one on trt; loadability has none
    p95 = frame[frame["metric"] == "p95_latency_ms"]
    assert list(p95["value"]) == [2.0, 3.0, 5.0] and set(p95["verdict"]) == {"pass"}


def test_filters_and_limits(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ort = metric_history(store, "demo", cell="ort/*", metric="p50_*")
    assert list(zip(ort["run_id"], ort["value"], strict=True)) == [("r0", 1.0), ("r1", 2.0), ("r3", 4.0)]
    assert list(metric_history(store, "demo", limit=1)["run_id"].unique()) == ["r3"]
    assert list(metric_history(store, "demo", until=T0 + timedelta(minutes=1))["run_id"].unique()) == ["r0", "r1"]
    assert metric_history(store, "demo", validator="loadability").empty
    empty = metric_history(store, "ghost")
    assert empty.empty and list(empty.columns) == COLUMNS
