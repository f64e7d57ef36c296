"""Affected-only re-runs: for each kind of change, exactly the expected (cell, validator) checks re-run."""
from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.cells import BackendSpec, Cell, RuntimeSpec
from modelcompat.model.package import load_package
from modelcompat.planning.plan import make_plan, plan_markdown
from modelcompat.runtime.environments import existing_env, provision
from modelcompat.settings import env_cache
from modelcompat.store import RunRecord, Store
from modelcompat.validators.registry import Registry
from support.pkgvariants import HOST_ORT, ORT_116, TORCH_EAGER, TORCHSCRIPT, rehash
from support.tinyonnx import one_node, onnx_package

FLOAT = TensorProto.FLOAT

VALIDATORS = ["integrity", "io_contract", "loadability", "numerical_parity"]
CELLS = [HOST_ORT, ORT_116, TORCHSCRIPT, TORCH_EAGER]
TORCH_EXPORT = TORCH_EAGER.model_copy(update={"backend": BackendSpec(id="torch-export", runtime="torch", mode="export")})
ORT = {HOST_ORT.id, ORT_116.id}
ALL_CELLS = {c.id for c in CELLS}
RUNTIME_DEPENDENT = ["io_contract", "loadability", "numerical_parity"]


def execute(cells: list[Cell], package, store: Store, run_id: str, params=None) -> None:
    """Run every check for real (probes, runtimes) and append the run, as the flow does."""
    reports = []
    for cell in cells:
        reports += check_cell(CellJob(cell=cell, package_root=str(package.root), validators=tuple(VALIDATORS),
                                      params=params or {}, run_id=run_id, env_cache=str(env_cache())))
    now = datetime.now(UTC)
    store.append_run(RunRecord(run_id=run_id, trigger="cli", matrix="test", model_name=package.manifest.name,
                               model_version=package.manifest.version, model_sha256=package.primary_sha256,
                               started_at=now, finished_at=now), reports)


@pytest.fixture(scope="module")
def baseline(demo_package, tmp_path_factory):
    """A package copy and a store holding one full run of it over CELLS."""
    root = tmp_path_factory.mktemp("plan")
    package = load_package(shutil.copytree(demo_package.root, root / "pkg"))
    store = Store(str(root / "store"))
    execute(CELLS, package, store, "baseline")
    return package, store


def to_run(plan) -> set[tuple[str, str]]:
    return {(p.cell.id, p.validator) for p in plan if p.decision == "run"}


def grid(cells, validators) -> set[tuple[str, str]]:
    return {(c, v) for c in cells for v in validators}


def mutated(baseline, tmp_path: Path, edit) -> object:
    package, _ = baseline
    dest = shutil.copytree(package.root, tmp_path / "pkg")
    manifest = yaml.safe_load((dest / "modelcompat.yaml").read_text())
    edit(dest, manifest)
    (dest / "modelcompat.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return load_package(dest)


def _artifact_bytes(folder: Path, manifest: dict) -> None:
    model = onnx.load(folder / "model.onnx")
    model.doc_string = "re-exported"  # different bytes, same graph
    onnx.save(model, folder / "model.onnx")
    rehash(folder, manifest)


def _tolerance(folder: Path, manifest: dict) -> None:
    manifest.setdefault("tolerances", {})["atol"] = 1e-3


def _payload(folder: Path, manifest: dict) -> None:
    with np.load(folder / manifest["payload"]) as npz:
        arrays = {k: npz[k] + 1 for k in npz.files}
    np.savez(folder / manifest["payload"], **arrays)


def _reference(folder: Path, manifest: dict) -> None:
    with np.load(folder / manifest["reference"]) as npz:
        arrays = {k: npz[k] * 1.0001 for k in npz.files}
    np.savez(folder / manifest["reference"], **arrays)


def _budget(folder: Path, manifest: dict) -> None:
    manifest.setdefault("budgets", {})["p95_latency_ms"] = 1.0  # no core validator declares budgets


# A check that needs the model brings the cell's cached loadability along (one root cause for a load failure).
MUTATIONS = [
    ("artifact bytes (onnx)", _artifact_bytes, grid(ORT, VALIDATORS)),
    ("manifest tolerances", _tolerance, grid(ALL_CELLS, ["numerical_parity", "loadability"])),
    ("manifest budgets", _budget, set()),
    ("payload", _payload, grid(ALL_CELLS, ["io_contract", "numerical_parity", "loadability"])),
    ("reference outputs", _reference, grid(ALL_CELLS, ["numerical_parity", "loadability"])),
]
BESIDE = "runs beside {} so that a load failure has one root cause"


def test_nothing_changed_nothing_runs(baseline) -> None:
    package, store = baseline
    plan = make_plan(CELLS, VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache())
    assert to_run(plan) == set()
    assert {p.decision for p in plan} == {"cached"}
    assert all(p.reused.run_id == "baseline" and p.reused.cell == p.cell.id for p in plan)
    assert "unchanged since run baseline" in plan_markdown(plan)


@pytest.mark.parametrize(("change", "edit", "expected"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_package_changes_rerun_exactly_what_they_affect(baseline, tmp_path, change, edit, expected) -> None:
    _, store = baseline
    package = mutated(baseline, tmp_path, edit)
    plan = make_plan(CELLS, VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache())
    assert to_run(plan) == expected
    for p in plan:
        if p.decision == "run":
            assert p.reason and p.reason != "no earlier report of this check"
        if p.decision == "run" and p.validator == "loadability" and change != "artifact bytes (onnx)":
            first = "io_contract" if change == "payload" else "numerical_parity"
            assert p.reason == BESIDE.format(first) and p.reused is None
            assert p.expected_s is not None  # still scheduled by its last duration


def test_a_validators_params_rerun_only_it(baseline) -> None:
    package, store = baseline
    plan = make_plan(CELLS, VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache(),
                     params={"numerical_parity": {"atol": 0.01}})
    assert to_run(plan) == grid(ALL_CELLS, ["numerical_parity", "loadability"])
    assert {p.reason for p in plan if p.decision == "run"} == {"params changed", BESIDE.format("numerical_parity")}


def test_a_validators_code_reruns_only_it(baseline, monkeypatch) -> None:
    package, store = baseline
    registry = Registry.discover()
    monkeypatch.setattr(registry.validators["loadability"], "version", "2")
    plan = make_plan(CELLS, VALIDATORS, package, registry, store=store, env_cache=env_cache())
    assert to_run(plan) == grid(ALL_CELLS, ["loadability"])
    assert all("validator code: v1" in p.reason for p in plan if p.decision == "run")


def test_one_runtimes_version_reruns_only_its_cells(baseline) -> None:
    package, store = baseline
    older = ORT_116.model_copy(update={"runtime": RuntimeSpec(
        id="ort-1.16", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.16.2", "numpy<2"))})
    cells = [HOST_ORT, older, TORCHSCRIPT, TORCH_EAGER]
    provision(older.runtime, env_cache())  # resolved versions are what the key holds: build it
    plan = make_plan(cells, VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache())
    assert to_run(plan) == grid({older.id}, RUNTIME_DEPENDENT)
    reasons = {p.reason for p in plan if p.decision == "run"}
    assert reasons == {"runtime ort-1.16: onnxruntime 1.16.3 → 1.16.2"}


def test_an_unbuilt_runtime_is_planned_to_run_with_the_reason(baseline) -> None:
    package, store = baseline
    unbuilt = ORT_116.model_copy(update={"runtime": RuntimeSpec(
        id="ort-1.16", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.16.1", "numpy<2.1"))})
    assert existing_env(unbuilt.runtime, env_cache()) is None
    plan = make_plan([unbuilt], VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache())
    assert to_run(plan) == grid({unbuilt.id}, RUNTIME_DEPENDENT)
    assert {p.reason for p in plan if p.decision == "run"} == {"runtime ort-1.16 not provisioned yet"}


def test_a_rebuilt_environment_with_the_same_versions_keeps_the_cache(baseline, tmp_path) -> None:
    package, store = baseline
    # Rebuild the 1.16.3 env in a fresh cache dir: same resolved versions, different files.
    fresh_cache = tmp_path / "envs"
    provision(ORT_116.runtime, fresh_cache)
    plan = make_plan([ORT_116], VALIDATORS, package, Registry.discover(), store=store, env_cache=fresh_cache)
    assert to_run(plan) == set()


def test_cells_added_or_removed(baseline) -> None:
    package, store = baseline
    added = make_plan(CELLS + [TORCH_EXPORT], VALIDATORS, package, Registry.discover(), store=store,
                      env_cache=env_cache())
    assert to_run(added) == grid({TORCH_EXPORT.id}, VALIDATORS)
    assert {p.reason for p in added if p.decision == "run"} == {"no earlier report of this check"}
    removed = make_plan([HOST_ORT, ORT_116, TORCHSCRIPT], VALIDATORS, package, Registry.discover(), store=store,
                        env_cache=env_cache())
    assert to_run(removed) == set()


def test_force_and_per_validator_force(baseline) -> None:
    package, store = baseline
    forced = make_plan(CELLS, VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache(), force=True)
    assert to_run(forced) == grid(ALL_CELLS, VALIDATORS)
    one = make_plan(CELLS, VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache(),
                    force_validators={"integrity"})
    assert to_run(one) == grid(ALL_CELLS, ["integrity"])  # static: the cached loadability stays cached


def test_cells_without_their_hardware_are_planned_skipped(baseline) -> None:
    package, store = baseline
    from modelcompat.matrix.cells import HardwareSpec
    cuda = HOST_ORT.model_copy(update={"hardware": HardwareSpec(id="cuda", kind="cuda", resources={"GPU": 1})})
    plan = make_plan([cuda], VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache(),
                     offered={"local": {}})
    assert {p.decision for p in plan} == {"skipped"}
    assert all(p.code == "cell.hardware_unavailable" for p in plan)


def test_a_forced_plan_carries_each_checks_last_duration(baseline) -> None:
    package, store = baseline
    forced = make_plan(CELLS, VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache(), force=True)
    stored = store.reports("baseline").set_index(["cell", "validator"])["duration_s"]
    for p in forced:
        assert p.expected_s == pytest.approx(stored[(p.cell.id, p.validator)])
    never_ran = make_plan([TORCH_EXPORT], VALIDATORS, package, Registry.discover(), store=store, env_cache=env_cache())
    assert [p.expected_s for p in never_ran if p.decision == "run"] == [None] * len(VALIDATORS)


def test_the_plan_carries_each_cells_setup_time_outside_its_checks(demo_package, tmp_path) -> None:
    """Setup = the span of the cell's checks in its last run minus their summed durations: with the static
    gate first, the probe's start (torch import) falls inside the span."""
    store = Store(str(tmp_path / "store"))
    checks = ("unsafe_serialization", "integrity", "io_contract")
    reports = check_cell(CellJob(cell=TORCHSCRIPT, package_root=str(demo_package.root), validators=checks,
                                 run_id="r1", env_cache=str(env_cache())))
    now = datetime.now(UTC)
    store.append_run(RunRecord(run_id="r1", trigger="cli", matrix="test", model_name=demo_package.manifest.name,
                               model_version=demo_package.manifest.version, model_sha256=demo_package.primary_sha256,
                               started_at=now, finished_at=now), reports)
    forced = make_plan([TORCHSCRIPT], list(checks), demo_package, Registry.discover(), store=store,
                       env_cache=env_cache(), force=True)
    starts = [datetime.fromisoformat(r.started_at).timestamp() for r in reports]
    span = max(s + r.duration_s for s, r in zip(starts, reports)) - min(starts)
    expected = span - sum(r.duration_s for r in reports)
    assert [p.setup_s for p in forced] == [pytest.approx(expected)] * len(checks)
    assert expected > 0.2  # the probe imported torch between the gate and io_contract


def test_a_cached_load_refusal_runs_again_beside_the_checks_that_need_the_model(demo_package, tmp_path) -> None:
    """IR 10 / opset 21 on onnxruntime 1.16: the first run's io_contract is blocked (no cache key), so the next
    plan runs it again; the cached loadability fail runs with it, so the refusal is one fail line, not two."""
    package = onnx_package(demo_package, tmp_path / "ir10", one_node("Softmax", FLOAT, opset=21, ir_version=10))
    checks = ("integrity", "loadability", "io_contract")
    store = Store(str(tmp_path / "store"))

    def cell_run(validators: tuple[str, ...], run_id: str) -> dict[str, object]:
        reports = check_cell(CellJob(cell=ORT_116, package_root=str(package.root), validators=validators,
                                     run_id=run_id, env_cache=str(env_cache())))
        return {r.validator: r for r in reports}

    first = cell_run(checks, "first")
    assert first["loadability"].status.value == "fail" and first["io_contract"].status.value == "skipped"
    now = datetime.now(UTC)
    store.append_run(RunRecord(run_id="first", trigger="cli", matrix="test", model_name=package.manifest.name,
                               model_version=package.manifest.version, model_sha256=package.primary_sha256,
                               started_at=now, finished_at=now), list(first.values()))

    plan = {p.validator: p for p in make_plan([ORT_116], list(checks), package, Registry.discover(), store=store,
                                              env_cache=env_cache())}
    assert {n: p.decision for n, p in plan.items()} == {"integrity": "cached", "loadability": "run",
                                                        "io_contract": "run"}
    assert plan["loadability"].reason == BESIDE.format("io_contract")
    assert plan["loadability"].cache_key == first["loadability"].cache_key  # same inputs, only re-run
    assert f"| `{ORT_116.id}` | loadability | run | {BESIDE.format('io_contract')} |" in plan_markdown(list(plan.values()))

    second = cell_run(tuple(n for n, p in plan.items() if p.decision == "run"), "second")
    fails = [(r.validator, f.code) for r in second.values() for f in r.findings if r.status.value == "fail"]
    assert fails == [("loadability", "loadability.ir_version_unsupported")]
    assert [f.code for f in second["io_contract"].findings] == ["io_contract.blocked"]
    # What the plan avoids: io_contract alone meets the refusal and repeats it as its own fail.
    alone = cell_run(("io_contract",), "alone")["io_contract"]
    assert alone.status.value == "fail" and [f.code for f in alone.findings] == ["io_contract.runtime_refused"]
