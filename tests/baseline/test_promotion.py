"""Baselines: promotion by run and by rule, history, atomic files, concurrent promotions."""
from __future__ import annotations

import json
import multiprocessing
import os
from datetime import timedelta
from pathlib import Path

import pytest

from modelcompat.baseline.promotion import (
    BaselineError,
    baseline_for,
    pointers,
    promote,
    promote_rule,
    promotions,
)
from modelcompat.results.report import Report, Status
from modelcompat.store import Store
from support.store_records import T0, make_run

CELLS = ("ort-1.16/cpu/ort-cpu", "ort-1.18/cpu/ort-cpu")
VALIDATORS = ("loadability", "latency")


def report(run_id: str, cell: str, validator: str, status: Status = Status.PASS, **metrics: float) -> Report:
    runtime = cell.split("/")[0]
    return Report(run_id=run_id, cell=cell, runtime=runtime, runtime_version="onnxruntime 1.18.0", hardware="cpu",
                  backend="ort-cpu", validator=validator, validator_version="1", status=status,
                  metrics=metrics or {"p95_latency_ms": 2.0})


def add_run(store: Store, run_id: str, minutes: int, statuses: dict | None = None, verdict: str = "pass",
            model: str = "demo") -> None:
    statuses = statuses or {}
    reports = [report(run_id, c, v, statuses.get((c, v), Status.PASS)) for c in CELLS for v in VALIDATORS]
    run = make_run(run_id, T0 + timedelta(minutes=minutes), model_name=model).model_copy(update={"verdict": verdict})
    store.append_run(run, reports)


def test_promote_sets_pointers_and_keeps_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    add_run(store, "r1", 0)
    add_run(store, "r2", 10, {(CELLS[0], "latency"): Status.ERROR})
    first = promote(store, "r1", now=T0 + timedelta(hours=1))
    assert first.model == "demo" and len(first.pointers) == 4 and first.promoted_by
    second = promote(store, "r2", now=T0 + timedelta(hours=2))
    # the error report is not promoted: the check keeps its last accepted report
    assert (CELLS[0], "latency", "error") not in second.pointers and len(second.pointers) == 3
    current = pointers(store, "demo")
    assert current[(CELLS[0], "latency")] == "r1"
    assert current[(CELLS[1], "latency")] == "r2"
    assert [p.run_id for p in promotions(store, "demo")] == ["r1", "r2"]
    # as of before the second promotion: everything still points at r1
    assert set(pointers(store, "demo", as_of=T0 + timedelta(hours=1, minutes=30)).values()) == {"r1"}
    base = baseline_for(store, "demo")
    assert set(base) == {(c, v) for c in CELLS for v in VALIDATORS}
    assert base[(CELLS[1], "loadability")].run_id == "r2" and base[(CELLS[0], "latency")].run_id == "r1"
    assert isinstance(base[(CELLS[0], "latency")], Report)
    # the files are plain JSON with who/when/from which run
    files = sorted((tmp_path / "store" / "baselines" / "demo").glob("*.json"))
    assert len(files) == 2 and json.loads(files[0].read_text())["run_id"] == "r1"


def test_promote_a_subset_of_cells_and_validators(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    add_run(store, "r1", 0)
    p = promote(store, "r1", cells=["ort-1.18/*"], validators=["latency"])
    assert [(c, v) for c, v, _ in p.pointers] == [(CELLS[1], "latency")]
    with pytest.raises(BaselineError, match="no promotable report"):
        promote(store, "r1", cells=["trt/*"])


def test_promote_unknown_run_is_an_input_error_listing_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    add_run(store, "r1", 0)
    with pytest.raises(BaselineError) as info:
        promote(store, "nope")
    assert "r1" in info.value.render()


def test_promote_rule_last_passing(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    add_run(store, "r1", 0)
    add_run(store, "r2", 10)
    add_run(store, "r3", 20, {(CELLS[0], "loadability"): Status.FAIL}, verdict="fail")
    add_run(store, "r4", 30, verdict="regressed")
    add_run(store, "other", 40, model="other")
    p = promote_rule(store, "demo")
    assert p.run_id == "r2" and p.rule == "last-passing"
    with pytest.raises(BaselineError, match="no run of model 'ghost'"):
        promote_rule(store, "ghost")
    with pytest.raises(BaselineError, match="unknown promotion rule"):
        promote_rule(store, "demo", rule="best")


def test_no_baseline_is_empty(tmp_path: Path) -> None:
    assert baseline_for(Store(tmp_path / "store"), "demo") == {}


def test_model_names_with_slashes_are_kept_apart(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    add_run(store, "r1", 0, model="org/demo")
    add_run(store, "r2", 5, model="org")
    promote(store, "r1")
    assert set(pointers(store, "org/demo").values()) == {"r1"}
    assert pointers(store, "org") == {}


def test_a_crashed_promotion_leaves_nothing_readers_pick_up(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    add_run(store, "r1", 0)
    promote(store, "r1")
    folder = tmp_path / "store" / "baselines" / "demo"
    # what a writer killed before its rename leaves behind: a half-written temporary file
    (folder / ".tmp-deadbeef.json").write_text('{"model": "demo", "run_id": "r9", "poin')
    assert set(pointers(store, "demo").values()) == {"r1"}


def _promote_many(root: str, run_id: str, n: int, barrier) -> None:
    store = Store(root)
    barrier.wait()
    for _ in range(n):
        promote(store, run_id)


def test_concurrent_promotions_lose_nothing_and_never_corrupt(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    add_run(store, "ra", 0)
    add_run(store, "rb", 1)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_promote_many, args=(str(tmp_path / "store"), rid, 15, barrier)) for rid in ("ra", "rb")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    history = promotions(store, "demo")
    assert len(history) == 30 and sorted({p.run_id for p in history}) == ["ra", "rb"]
    folder = tmp_path / "store" / "baselines" / "demo"
    assert not [f for f in os.listdir(folder) if f.startswith(".tmp-")]
    # every file parses, and the current pointers are those of the last promotion in the total order
    last = history[-1].run_id
    assert set(pointers(store, "demo").values()) == {last}


def _versioned_run(store: Store, run_id: str, minutes: int, model: str, version: str, verdict: str = "pass") -> None:
    reports = [report(run_id, c, v) for c in CELLS for v in VALIDATORS]
    run = make_run(run_id, T0 + timedelta(minutes=minutes), model_name=model)
    store.append_run(run.model_copy(update={"verdict": verdict, "model_version": version}), reports)


def test_promote_rule_last_passing_on_a_registry_alias(tmp_path: Path, demo_package) -> None:
    import subprocess
    import sys

    from modelcompat.model_registry.local import LocalRegistry
    from support.pkgvariants import variant

    def set_version(version: str):
        def edit(_folder: Path, manifest: dict) -> None:
            manifest["version"] = version
        return edit

    registry = LocalRegistry(tmp_path / "registry")
    name = demo_package.manifest.name
    for version in ("1", "2"):
        registry.register(variant(demo_package, tmp_path / f"pkg-{version}", set_version(version)).root)
    registry.set_alias(name, "production", "1")
    registry.set_alias(name, "staging", "2")

    store = Store(tmp_path / "store")
    _versioned_run(store, "v1-a", 0, name, "1")
    _versioned_run(store, "v1-b", 10, name, "1")
    _versioned_run(store, "v1-c", 20, name, "1", verdict="regressed")
    _versioned_run(store, "v2-a", 30, name, "2")  # the latest passing run overall, but not production's
    _versioned_run(store, "v2-b", 40, name, "2", verdict="fail")

    assert promote_rule(store, name).run_id == "v2-a"  # no alias: any version
    p = promote_rule(store, name, alias="production", registry=registry)
    assert p.run_id == "v1-b" and p.rule == "last-passing@production"
    assert set(pointers(store, name).values()) == {"v1-b"}
    # the registry may also be given as a folder (open_registry), and aliases move with the registry
    registry.set_alias(name, "production", "2")
    assert promote_rule(store, name, alias="production", registry=str(registry.root)).run_id == "v2-a"
    with pytest.raises(BaselineError, match="no alias 'canary'") as info:
        promote_rule(store, name, alias="canary", registry=registry)
    assert "production -> 2" in info.value.render()
    registry.set_alias(name, "staging", "1")
    _versioned_run(store, "v1-z", 50, name, "1", verdict="fail")
    assert promote_rule(store, name, alias="staging", registry=registry).run_id == "v1-b"

    # CLI: --rule last-passing --model NAME --alias production, registry from $MODELCOMPAT_REGISTRY
    registry.set_alias(name, "production", "1")
    env = {**os.environ, "MODELCOMPAT_REGISTRY": str(registry.root)}
    cmd = [sys.executable, "-m", "modelcompat.cli", "baseline", "promote", "--rule", "last-passing",
           "--model", name, "--store", str(tmp_path / "store")]
    done = subprocess.run([*cmd, "--alias", "production"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "promoted run v1-b" in done.stdout and "last-passing@production" in done.stdout
    assert promotions(store, name)[-1].run_id == "v1-b"
    # no passing run of the version the alias points at: exit 2 with the reason
    registry.set_alias(name, "staging", "2")
    store2 = Store(tmp_path / "store2")
    _versioned_run(store2, "only-v1", 0, name, "1")
    done = subprocess.run([sys.executable, "-m", "modelcompat.cli", "baseline", "promote", "--rule", "last-passing",
                           "--model", name, "--alias", "staging", "--store", str(tmp_path / "store2")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "on version '2' (alias 'staging')" in " ".join(done.stderr.split()), done.stderr


def test_promotions_on_an_object_store_use_only_the_store_api() -> None:
    # pyarrow's in-memory filesystem: no local paths, so promotion must go through Store.publish_file.
    store = Store("mock:///bucket/store")
    add_run(store, "r1", 0)
    p = promote(store, "r1")
    assert p.file == store.location(f"baselines/demo/{p.file.rsplit('/', 1)[1]}")
    assert [q.run_id for q in promotions(store, "demo")] == ["r1"] and set(pointers(store, "demo").values()) == {"r1"}
