"""End to end: the CLI runs the real flow on a real local Dask cluster against a real Prefect server."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelcompat.orchestration.matrix_run import run_name
from modelcompat.matrix.spec import load_matrix
from modelcompat.settings import matrices_dir
from modelcompat.store import Store
from modelcompat.validators.registry import Registry
from support.cli_imports import modules_loaded, recording_cli
from support.servers import api_json, wait_until

pytestmark = pytest.mark.server
CLI = [sys.executable, "-m", "modelcompat.cli"]
CORE = ("integrity", "loadability", "io_contract", "numerical_parity")


def run_cli(args: list[str], api_url: str | None, tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELCOMPAT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _api(api_url: str, path: str, body: dict) -> list[dict]:
    return api_json("POST", f"{api_url}{path}", json=body)


def test_default_matrix_end_to_end(prefect_server: str, demo_package, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    out = tmp_path / "summary.json"
    proc = run_cli(["run", "--model", str(demo_package.root), "--store", str(store_dir), "--json", str(out),
                    "--workers", "2"], prefect_server, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    matrix = load_matrix(matrices_dir() / "default.yaml")
    validators = Registry.discover().names
    assert {(r["cell"], r["validator"]) for r in summary["reports"]} == {
        (c.id, v) for c in matrix.cells for v in validators}
    assert summary["verdict"] == "pass"
    assert summary["model"]["name"] == "demo-mlp"
    by_cell = {}
    for r in summary["reports"]:
        by_cell.setdefault(r["cell"], []).append(r)
        if r["hardware"] == "cuda":  # no GPU here: modelled, routed, and skipped with the reason
            assert r["status"] == "skipped"
            assert "GPU" in r["findings"][0]["message"]
        else:
            assert r["status"] in ("pass", "warn", "skipped"), r
            if r["validator"] in CORE:
                assert r["status"] == "pass", r
    # The pinned older runtime really ran in its own venv, the host runtimes in the host interpreter.
    versions = {r["cell"]: r["runtime_version"] for r in summary["reports"] if r["validator"] == "loadability"}
    assert versions["ort-1.16/cpu/ort-cpu"] == "onnxruntime 1.16.3"
    import onnxruntime
    import torch
    assert versions["host-ort/cpu/ort-cpu"] == f"onnxruntime {onnxruntime.__version__}"
    assert versions["host-torch/cpu/torch-eager"] == f"torch {torch.__version__}"
    parity = next(r for r in summary["reports"] if r["cell"] == "ort-1.16/cpu/ort-cpu" and r["validator"] == "numerical_parity")
    assert parity["metrics"]["max_abs_diff"] < 1e-5
    assert parity["evidence"]["artifact_sha256"] == demo_package.artifact("onnx").sha256
    assert parity["evidence"]["environment_fingerprint"]

    # Every report is in the store, under the same run.
    store = Store(str(store_dir))
    stored = store.load_reports(summary["run_id"])
    assert len(stored) == len(summary["reports"])
    assert {(r.cell, r.validator, r.status.value) for r in stored} == {
        (r["cell"], r["validator"], r["status"]) for r in summary["reports"]}
    runs = store.runs()
    assert list(runs["run_id"]) == [summary["run_id"]]

    # The flow ran on the server the test started: the Dask workers reported their task runs there.
    flow_run = api_json("GET", f"{prefect_server}/flow_runs/{summary['flow_run_id']}")
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["name"] == "check demo on default"  # the package folder and the matrix the CLI passed
    task_runs = _api(prefect_server, "/task_runs/filter", {"flow_runs": {"id": {"any_": [summary["flow_run_id"]]}}})
    names = {t["name"] for t in task_runs if t["state_type"] == "COMPLETED"}
    ran_cells = {c.id for c in matrix.cells if c.hardware.id != "cuda"}
    assert names == {f"check {c}" for c in ran_cells}
    artifacts = _api(prefect_server, "/artifacts/filter", {"flow_runs": {"id": {"any_": [summary["flow_run_id"]]}}})
    assert {a["type"] for a in artifacts} >= {"table", "markdown"}
    assert any(a["key"].endswith("-plan") for a in artifacts)
    assert "verdict" in proc.stdout

    # Nothing changed: the plan reuses every check that reached a verdict, and a second run executes none
    # of them (no task runs, hence no Dask cluster and no probe), reusing the first run's reports.
    plan_json = tmp_path / "plan.json"
    proc = run_cli(["plan", "--model", str(demo_package.root), "--store", str(store_dir), "--json", str(plan_json)],
                   prefect_server, tmp_path)
    assert proc.returncode == 0, proc.stderr
    decisions = {(p["cell"], p["validator"]): p for p in json.loads(plan_json.read_text())}
    verdicts = {(r["cell"], r["validator"]) for r in summary["reports"] if r["status"] in ("pass", "warn", "fail")}
    assert {k for k, p in decisions.items() if p["decision"] == "cached"} == verdicts
    assert {p["cached_from"] for p in decisions.values() if p["decision"] == "cached"} == {summary["run_id"]}
    assert not [k for k, p in decisions.items() if p["decision"] == "run"]

    again = tmp_path / "again.json"
    proc = run_cli(["run", "--model", str(demo_package.root), "--store", str(store_dir), "--json", str(again)],
                   prefect_server, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    second = json.loads(again.read_text())
    assert second["plan"]["run"] == 0
    cached = [r for r in second["reports"] if r["cached"]]
    assert {(r["cell"], r["validator"]) for r in cached} == verdicts
    assert {r["cached_from"] for r in cached} == {summary["run_id"]}
    assert not _api(prefect_server, "/task_runs/filter", {"flow_runs": {"id": {"any_": [second["flow_run_id"]]}}})
    assert {r.cached for r in store.load_reports(second["run_id"]) if r.status.value != "skipped"} == {True}


def _tampered_copy(package, tmp_path: Path) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(package.root, copy)
    manifest = yaml.safe_load((copy / "modelcompat.yaml").read_text())
    for artifact in manifest["artifacts"]:
        if artifact["format"] == "onnx":
            artifact["sha256"] = "0" * 64
    (copy / "modelcompat.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return copy


def test_a_failing_check_exits_1_with_the_finding(prefect_server: str, demo_package, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    proc = run_cli(["run", "--model", str(_tampered_copy(demo_package, tmp_path)), "--cells", "host-ort/cpu/*",
                    "--json", str(out), "--workers", "1"], prefect_server, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    assert summary["verdict"] == "fail"
    integrity = next(r for r in summary["reports"] if r["validator"] == "integrity")
    assert integrity["status"] == "fail"
    assert integrity["findings"][0]["code"] == "integrity.sha256_mismatch"
    assert integrity["findings"][0]["remediation"]
    assert "integrity.sha256_mismatch" in proc.stdout


def test_a_check_that_cannot_run_exits_3(prefect_server: str, demo_package, tmp_path: Path) -> None:
    matrix = tmp_path / "broken-runtime.yaml"
    matrix.write_text(yaml.safe_dump({
        "name": "broken-runtime",
        "runtimes": [{"id": "ort-none", "kind": "onnxruntime", "env": "venv",
                      "requirements": ["onnxruntime==0.0.0"]}],
        "hardware": [{"id": "cpu"}],
        "backends": [{"id": "ort-cpu", "runtime": "onnxruntime", "provider": "CPUExecutionProvider"}],
    }))
    out = tmp_path / "s.json"
    proc = run_cli(["run", "--matrix", str(matrix), "--model", str(demo_package.root), "--json", str(out),
                    "--workers", "1"], prefect_server, tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    statuses = {r["validator"]: r["status"] for r in summary["reports"]}
    assert statuses["integrity"] == "pass"  # needs no runtime: still ran
    assert statuses["loadability"] == "error"
    finding = next(r for r in summary["reports"] if r["validator"] == "loadability")["findings"][0]
    assert "onnxruntime==0.0.0" in finding["message"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--matrix", "MISSING.yaml"], "MISSING.yaml"),
        (["run", "--validators", "no_such_validator"], "--validators"),
        (["run", "--cells", "nothing/*"], "--cells"),
        (["run", "--model", "/nonexistent/pkg"], "/nonexistent/pkg"),
        (["run", "--workers", "0"], "--workers"),
    ],
)
def test_invalid_input_exits_2_without_traceback(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = run_cli(args, None, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "home" / "store").exists()  # nothing was run


def test_run_starts_its_own_prefect_server_when_none_is_configured(demo_package, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    proc = run_cli(["run", "--model", str(demo_package.root), "--matrix", str(matrices_dir() / "smoke.yaml"),
                    "--json", str(out), "--workers", "1"], None, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    assert summary["flow_run_id"]
    assert summary["verdict"] == "pass"
    assert {r["status"] for r in summary["reports"] if r["validator"] in CORE} == {"pass"}
    assert Store(str(tmp_path / "home" / "store")).load_reports(summary["run_id"])


# --- run names: what runs, never "None" ----------------------------------------------------------

def test_a_matrix_left_at_none_is_named_after_the_matrix_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # validate-one and on-model-registered pass matrix=None: check-matrix then runs $MODELCOMPAT_MATRIX.
    monkeypatch.setenv("MODELCOMPAT_MATRIX", str(matrices_dir() / "smoke.yaml"))
    assert run_name({"model": "/pkgs/demo/", "matrix": None}) == "check demo on smoke"
    monkeypatch.delenv("MODELCOMPAT_MATRIX")
    assert run_name({"model": "/pkgs/demo", "matrix": None, "cells": None}) == "check demo on default"
    assert run_name({}) == "check demo on default"  # no model: the built-in demo package


def test_the_name_carries_the_model_label_and_the_filters() -> None:
    params = {"model": "/registry/pkgs/3f9a", "matrix": "/m/nightly.yml", "cells": "host-ort/cpu/*",
              "validators": ["loadability", "latency"]}
    assert run_name(params) == "check 3f9a on nightly, cells host-ort/cpu/*, validators loadability,latency"
    assert run_name(params, model_label="demo-mlp 1.0.0").startswith("check demo-mlp 1.0.0 on nightly, cells ")


def test_one_cell_with_a_server_configured_is_a_flow_run_there_recorded_by_the_cli_process(
        prefect_server: str, demo_package, tmp_path: Path) -> None:
    """A local run of one cell starts no Dask cluster and no flow engine: the cell runs in a thread of the CLI
    process, its probe in a process of its own; the run is still a check-matrix flow run on the server, with its
    task run, artifacts and log lines (orchestration/recorded_run.py)."""
    out, modules = tmp_path / "s.json", tmp_path / "modules.json"
    env = {**os.environ, "MODELCOMPAT_HOME": str(tmp_path / "home"), "PREFECT_API_URL": prefect_server,
           "MODULES_OUT": str(modules)}
    proc = subprocess.Popen(recording_cli("run", "--model", str(demo_package.root), "--cells", "host-ort/cpu/ort-cpu",
                                          "--validators", "integrity,numerical_parity", "--json", str(out), "--force"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + stderr
    summary = json.loads(out.read_text())
    assert {(r["validator"], r["status"]) for r in summary["reports"]} == {("integrity", "pass"),
                                                                           ("numerical_parity", "pass")}
    # Where the checks ran: `evidence.worker` is hostname:pid of the process that ran the cell.
    assert {r["evidence"]["worker"].rsplit(":", 1)[1] for r in summary["reports"]} == {str(proc.pid)}
    # Recorded on the server over its REST API: the CLI process never imported Prefect's engine, nor Dask.
    assert modules_loaded(modules) == []

    flow_run = api_json("GET", f"{prefect_server}/flow_runs/{summary['flow_run_id']}")
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["name"] == "check demo on default, cells host-ort/cpu/ort-cpu, validators integrity,numerical_parity"
    assert flow_run["parameters"]["run_id"] == summary["run_id"]  # the run the CLI planned is the flow's
    filters = {"flow_runs": {"id": {"any_": [summary["flow_run_id"]]}}}
    # The server records task runs from the client's events, a moment after they are sent: wait for it (bounded).
    task_runs = wait_until(lambda: [t for t in _api(prefect_server, "/task_runs/filter", filters)
                                    if t["state_type"] == "COMPLETED"], 60, "the task run recorded", interval=0.5)
    assert [t["name"] for t in task_runs] == ["check host-ort/cpu/ort-cpu"]
    artifacts = _api(prefect_server, "/artifacts/filter", filters)
    assert {a["key"] for a in artifacts} == {"compat-demo-mlp-plan", "compat-demo-mlp", "compat-demo-mlp-summary"}
    logs = _api(prefect_server, "/logs/filter", {"logs": {"flow_run_id": {"any_": [summary["flow_run_id"]]}}})
    assert any(f"run {summary['run_id']}: 2 checks planned, 2 to run" in line["message"] for line in logs)
    stored = Store(str(tmp_path / "home" / "store")).run(summary["run_id"])
    assert stored is not None and stored.flow_run_id == summary["flow_run_id"]
