"""on-model-registered through its deployment: `modelcompat serve` on a real Prefect server, a registration
event starts it; validate-one is then started through the API the UI uses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelcompat.model_registry.local import LocalRegistry
from modelcompat.settings import matrices_dir
from modelcompat.store import Store, audit
from support.servers import api_json, stop_group, wait_until

CLI = [sys.executable, "-m", "modelcompat.cli"]


@pytest.fixture
def served(prefect_server: str, tmp_path: Path):
    """`modelcompat serve` running against the test's server, with its own home, store and registry."""
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_HOME": str(tmp_path / "home"),
           "MODELCOMPAT_MATRIX": str(matrices_dir() / "smoke.yaml"), "MODELCOMPAT_WORKERS": "1",
           "MODELCOMPAT_PROMOTE_TO": "staging",
           "PREFECT_LOGGING_LEVEL": "WARNING", "DASK_LOGGING__DISTRIBUTED": "warning"}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def deployments_up():
        resp = httpx.post(f"{prefect_server}/deployments/filter", json={}, timeout=10)
        names = {d["name"] for d in resp.json()} if resp.status_code == 200 else set()
        return {"on-model-registered", "validate-one", "nightly-matrix"} <= names
    def trigger_up():
        # Serving applies a deployment, then its trigger as an automation the deployment owns; on SQLite the
        # server loads a created automation into its triggers service as that write commits.
        resp = httpx.get(f"{prefect_server}/deployments/name/on-model-registered/on-model-registered", timeout=10)
        if resp.status_code != 200:
            return False
        autos = httpx.get(f"{prefect_server}/automations/related-to/prefect.deployment.{resp.json()['id']}", timeout=10)
        return autos.status_code == 200 and any(a["name"] == "model-version-registered" and a["enabled"]
                                                for a in autos.json())
    try:
        wait_until(deployments_up, 120, "the served deployments")
        wait_until(trigger_up, 120, "the registry trigger's automation", interval=0.5)
        yield env
    finally:
        stop_group(proc)
        log.close()


@pytest.mark.server
def test_registering_a_version_triggers_its_check_and_writes_the_verdict_back(served, demo_package, tmp_path) -> None:
    env = served
    proc = subprocess.run([*CLI, "registry", "register", str(demo_package.root)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "event model.version.registered emitted" in proc.stdout
    registry = LocalRegistry(Path(env["MODELCOMPAT_HOME"]) / "registry")
    entry = wait_until(lambda: (e := registry.version("demo-mlp", "1.0.0")).get("verdict") and e, 300,
                  "the verdict in the registry", interval=3)
    assert entry["verdict"] == "pass"
    store = Store(str(Path(env["MODELCOMPAT_HOME"]) / "store"))
    run = store.runs().set_index("run_id").loc[entry["run_id"]]
    assert run["trigger"] == "registry_event"
    assert run["model_name"] == "demo-mlp" and run["model_version"] == "1.0.0"
    assert {r.cell for r in store.load_reports(entry["run_id"])} == {"host-ort/cpu/ort-cpu", "host-torch/cpu/torch-eager"}
    # Configured to promote (MODELCOMPAT_PROMOTE_TO): the passing version is now staging, through the gate, and
    # the trail says so as that flow run (the check's verdict first).
    # The flow records the verdict, then moves the alias: wait for the move (bounded), not for a timing margin.
    wait_until(lambda: registry.model("demo-mlp")["aliases"].get("staging"), 120, "the staging alias", interval=1)
    assert registry.model("demo-mlp")["aliases"] == {"staging": "1.0.0"}
    trail = audit.records(store, model="demo-mlp")
    assert [r["action"] for r in trail] == ["run.verdict", "alias.set"]
    assert trail[1]["who"].startswith("prefect:flow-run/") and trail[1]["subject"]["run_id"] == entry["run_id"]

    # validate-one through the API: just that validator on just that cell, re-run (not reused).
    api = env["PREFECT_API_URL"]
    deployment = api_json("GET", f"{api}/deployments/name/validate-one/validate-one")
    flow_run = api_json("POST", f"{api}/deployments/{deployment['id']}/create_flow_run", json={
        "parameters": {"model_name": "demo-mlp", "validator": "loadability", "cells": "host-ort/cpu/*"}})
    state = wait_until(lambda: (s := api_json("GET", f"{api}/flow_runs/{flow_run['id']}")["state_type"])
                  in ("COMPLETED", "FAILED", "CRASHED") and s, 300, "the validate-one run", interval=3)
    assert state == "COMPLETED"
    latest = store.runs().iloc[-1]
    assert latest["trigger"] == "ui"
    reports = store.load_reports(latest["run_id"])
    assert [(r.cell, r.validator, r.cached) for r in reports] == [("host-ort/cpu/ort-cpu", "loadability", False)]
    assert reports[0].status.value == "pass"
    assert registry.version("demo-mlp", "1.0.0")["run_id"] == latest["run_id"]
