"""Floating ("latest") runtimes: resolved to exact pins with real `uv pip compile` (PyPI), keyed by them.

A new upstream release is simulated without waiting for PyPI: an older resolution (onnxruntime==1.17.1) is
written into the resolution cache for a spec that now resolves to 1.17.3 (`>=1.16,<1.18`).
"""
from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from modelcompat.errors import EnvironmentBuildError
from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.cells import RuntimeSpec
from modelcompat.model.package import ModelPackage
from modelcompat.planning.plan import make_plan
from modelcompat.runtime.environments import (
    MARKER,
    env_dir,
    existing_env,
    is_floating,
    pins_hash,
    provision,
    resolution_path,
    resolve,
    resolved_versions,
)
from modelcompat.store import RunRecord, Store
from modelcompat.validators.registry import Registry
from support.pkgvariants import HOST_ORT

FLOATING = RuntimeSpec(id="ort-x", kind="onnxruntime", env="venv",
                       requirements=("onnxruntime>=1.16,<1.18", "numpy<2"))
PINNED = RuntimeSpec(id="ort-pinned", kind="onnxruntime", env="venv",
                     requirements=("onnxruntime==1.17.3", "numpy==1.26.4"))
FLOATING_CELL = HOST_ORT.model_copy(update={"runtime": FLOATING})
PINNED_CELL = HOST_ORT.model_copy(update={"runtime": PINNED})
VALIDATORS = ["integrity", "io_contract", "loadability", "numerical_parity"]
RUNTIME_DEPENDENT = {"io_contract", "loadability", "numerical_parity"}
DEAD_INDEX = "http://127.0.0.1:9/simple"  # discard port: nothing listens, connections are refused


@pytest.fixture(autouse=True)
def _default_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELCOMPAT_RESOLVE_TTL_S", raising=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """An env cache holding the floating runtime, resolved and built for real."""
    os.environ.pop("MODELCOMPAT_RESOLVE_TTL_S", None)
    cache = tmp_path_factory.mktemp("envs")
    return cache, provision(FLOATING, cache)


def _pins(cache: Path, runtime: RuntimeSpec = FLOATING) -> list[str]:
    return json.loads(resolution_path(runtime, cache).read_text())["pins"]


def _write_resolution(cache: Path, runtime: RuntimeSpec, pins: list[str], resolved_at: float) -> Path:
    """What an earlier resolution left behind (same format as the code writes)."""
    path = resolution_path(runtime, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "spec_hash": runtime.spec_hash(), "spec": runtime.model_dump(mode="json"), "pins": pins,
        "pins_hash": pins_hash(pins), "resolved_at": resolved_at,
        "resolved": datetime.fromtimestamp(resolved_at, timezone.utc).isoformat(timespec="seconds"),
    }, indent=2, sort_keys=True))
    return path


def _older(pins: list[str]) -> list[str]:
    """The same resolution as before onnxruntime 1.17.3 was released."""
    assert "onnxruntime==1.17.3" in pins
    return sorted("onnxruntime==1.17.1" if p == "onnxruntime==1.17.3" else p for p in pins)


def test_floating_spec_resolves_to_exact_pins_and_existing_env_finds_it(built) -> None:
    cache, env = built
    assert is_floating(FLOATING) and not is_floating(PINNED)
    assert is_floating(RuntimeSpec(id="l", kind="onnxruntime", requirements=("onnxruntime",)))
    assert is_floating(RuntimeSpec(id="w", kind="onnxruntime", requirements=("onnxruntime==1.17.*",)))
    assert not is_floating(RuntimeSpec(id="h", kind="onnxruntime", env="host"))

    pins = _pins(cache)
    assert "onnxruntime==1.17.3" in pins
    assert all("==" in p for p in pins)
    numpy = next(p for p in pins if p.startswith("numpy=="))
    assert numpy.startswith("numpy==1.")

    root = cache / f"{FLOATING.spec_hash()}-{pins_hash(pins)}"
    assert env_dir(FLOATING, cache) == root
    assert env.python == root / "bin" / "python" and not env.reused and env.spec_hash == FLOATING.spec_hash()
    marker = json.loads((root / MARKER).read_text())
    assert marker["pins"] == pins and marker["pins_hash"] == pins_hash(pins)
    versions = resolved_versions(env)
    assert versions["onnxruntime"] == "1.17.3" and f"numpy=={versions['numpy']}" == numpy
    assert {f"{k}=={v}" for k, v in versions.items()} == set(pins)  # the venv holds exactly the pins

    found = existing_env(FLOATING, cache)
    assert found is not None and found.python == env.python
    again = provision(FLOATING.model_copy(update={"id": "ort-alias"}), cache)
    assert again.reused and again.python == env.python


def test_a_new_release_invalidates_only_the_floating_runtimes_cells(demo_package: ModelPackage, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "envs"
    current = resolve(FLOATING, cache).pins  # what PyPI gives today: onnxruntime 1.17.3
    # The runtime was last resolved (and built, and checked) while 1.17.1 was the newest release.
    _write_resolution(cache, FLOATING, _older(list(current)), time.time())
    old_env = provision(FLOATING, cache)
    assert resolved_versions(old_env)["onnxruntime"] == "1.17.1"
    pinned_env = provision(PINNED, cache)
    assert pinned_env.python == cache / PINNED.spec_hash() / "bin" / "python"  # pinned: keyed by spec only
    assert not resolution_path(PINNED, cache).exists()  # and never resolved

    store = Store(str(tmp_path / "store"))
    reports = []
    for cell in (FLOATING_CELL, PINNED_CELL):
        reports += check_cell(CellJob(cell=cell, package_root=str(demo_package.root), validators=tuple(VALIDATORS),
                                      params={}, run_id="baseline", env_cache=str(cache)))
    now = datetime.now(timezone.utc)
    store.append_run(RunRecord(run_id="baseline", trigger="cli", matrix="test", model_name=demo_package.manifest.name,
                               model_version=demo_package.manifest.version,
                               model_sha256=demo_package.primary_sha256, started_at=now, finished_at=now), reports)
    assert {r.status.value for r in reports} <= {"pass", "warn"}, [(r.cell, r.validator, r.status) for r in reports]
    cells = [FLOATING_CELL, PINNED_CELL]
    plan = make_plan(cells, VALIDATORS, demo_package, Registry.discover(), store=store, env_cache=cache)
    assert {p.decision for p in plan} == {"cached"}  # within the TTL nothing is re-resolved

    # "A new release appeared": the resolution is due (TTL 0), re-resolving gives 1.17.3.
    monkeypatch.setenv("MODELCOMPAT_RESOLVE_TTL_S", "0")
    new_root = env_dir(FLOATING, cache)
    assert new_root != old_env.python.parent.parent
    assert new_root.name == f"{FLOATING.spec_hash()}-{pins_hash(current)}"
    assert _pins(cache) == list(current)
    plan = make_plan(cells, VALIDATORS, demo_package, Registry.discover(), store=store, env_cache=cache)
    decisions = {(p.cell.runtime.id, p.validator): (p.decision, p.reason) for p in plan}
    assert {decisions[("ort-x", v)] for v in RUNTIME_DEPENDENT} == {("run", "runtime ort-x not provisioned yet")}
    assert all(decisions[("ort-pinned", v)][0] == "cached" for v in VALIDATORS)

    new_env = provision(FLOATING, cache)  # the run builds it on first use
    assert not new_env.reused and new_env.python == new_root / "bin" / "python"
    assert resolved_versions(new_env)["onnxruntime"] == "1.17.3"
    assert old_env.python.exists()  # the old env is left alone (a new dir, not a rebuild in place)
    plan = make_plan(cells, VALIDATORS, demo_package, Registry.discover(), store=store, env_cache=cache)
    decisions = {(p.cell.runtime.id, p.validator): (p.decision, p.reason) for p in plan}
    assert {decisions[("ort-x", v)] for v in RUNTIME_DEPENDENT} == {
        ("run", "runtime ort-x: onnxruntime 1.17.1 → 1.17.3")}
    assert decisions[("ort-x", "integrity")][0] == "cached"  # does not declare the runtime as an input
    assert {decisions[("ort-pinned", v)][0] for v in VALIDATORS} == {"cached"}

    # Re-resolving again to the same versions keeps the env (and so the cache keys).
    before = json.loads(resolution_path(FLOATING, cache).read_text())
    again = provision(FLOATING, cache)
    after = json.loads(resolution_path(FLOATING, cache).read_text())
    assert again.reused and again.python == new_env.python
    assert after["resolved_at"] > before["resolved_at"] and after["pins_hash"] == before["pins_hash"]


def test_within_the_ttl_the_cached_resolution_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "envs"
    pins = _older(list(resolve(FLOATING, cache).pins))  # a resolution PyPI would no longer give
    path = _write_resolution(cache, FLOATING, pins, time.time() - 3600)
    content, mtime = path.read_text(), path.stat().st_mtime_ns
    for ttl in (None, "7200"):  # the default 6 h, and 2 h: an hour-old resolution is fresh for both
        if ttl:
            monkeypatch.setenv("MODELCOMPAT_RESOLVE_TTL_S", ttl)
        assert list(resolve(FLOATING, cache).pins) == pins  # a `uv pip compile` would have said 1.17.3
        assert existing_env(FLOATING, cache) is None  # looked up under those pins; nothing built
        assert env_dir(FLOATING, cache).name == f"{FLOATING.spec_hash()}-{pins_hash(pins)}"
    assert path.read_text() == content and path.stat().st_mtime_ns == mtime

    monkeypatch.setenv("MODELCOMPAT_RESOLVE_TTL_S", "1800")  # now it is stale: re-resolved
    assert "onnxruntime==1.17.3" in resolve(FLOATING, cache).pins
    assert path.stat().st_mtime_ns != mtime and "onnxruntime==1.17.3" in _pins(cache)
    assert not list(path.parent.glob("*.tmp"))  # written atomically (temporary file renamed)


def test_offline_falls_back_to_the_last_resolution(built, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    cache, env = built
    pins = _pins(cache)
    path = _write_resolution(cache, FLOATING, pins, time.time() - 30 * 86400)  # a month old
    content = path.read_text()
    monkeypatch.setenv("MODELCOMPAT_RESOLVE_TTL_S", "0")
    monkeypatch.setenv("UV_INDEX_URL", DEAD_INDEX)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")  # fail at once instead of retrying with backoff
    caplog.set_level(logging.WARNING, logger="modelcompat.runtime.environments")

    found = existing_env(FLOATING, cache)
    assert found is not None and found.python == env.python
    again = provision(FLOATING, cache)
    assert again.reused and again.python == env.python
    assert path.read_text() == content  # the last resolution is kept as it was
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("runtime ort-x: could not re-resolve its requirements" in w and "using the last resolution" in w
               and "onnxruntime==1.17.3" in w for w in warnings), warnings

    # Never resolved and offline: nothing to fall back on. The planner sees no env; provisioning says why.
    caplog.clear()
    empty = tmp_path / "empty"
    assert existing_env(FLOATING, empty) is None
    with pytest.raises(EnvironmentBuildError, match="uv pip compile failed"):
        provision(FLOATING, empty)
    assert not resolution_path(FLOATING, empty).exists()
    # A pinned runtime never resolves, so being offline does not touch its lookup.
    caplog.clear()
    assert existing_env(PINNED, empty) is None
    assert not caplog.records and not (empty / "resolutions" / f"{PINNED.spec_hash()}.json").exists()
