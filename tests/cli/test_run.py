"""`modelcompat plan` and `modelcompat run` through the real CLI (run: a real Prefect server and Dask worker; a run
with nothing to do and no server configured: neither)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelcompat.results.summary import RunSummary
from modelcompat.settings import matrices_dir
from modelcompat.store import Store
from support.cli_imports import modules_loaded, recording_cli

SMOKE = str(matrices_dir() / "smoke.yaml")


def test_plan_on_an_empty_store_runs_everything_it_can(cli, demo_package, tmp_path: Path) -> None:
    proc = cli("plan", "--model", str(demo_package.root), "--matrix", SMOKE,
               "--validators", "integrity,loadability", "--store", str(tmp_path / "store"),
               "--json", str(tmp_path / "plan.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("no earlier report of this check") == 4
    assert "4 run, 0 cached, 0 skipped" in proc.stdout
    assert not (tmp_path / "store" / "runs").exists()  # planning writes nothing
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert {(p["cell"], p["validator"], p["decision"]) for p in plan} == {
        (c, v, "run") for c in ("host-ort/cpu/ort-cpu", "host-torch/cpu/torch-eager")
        for v in ("integrity", "loadability")}
    assert all(p["cache_key"] and p["cached_from"] is None for p in plan)


def test_plan_as_markdown(invoke, demo_package, tmp_path: Path) -> None:
    code, out, _ = invoke("plan", "--model", str(demo_package.root), "--matrix", SMOKE, "--validators", "integrity",
                          "--store", str(tmp_path / "store"), "--markdown")
    assert code == 0
    assert out.startswith("# Plan: 2 to run, 0 cached, 0 skipped")
    assert "| `host-ort/cpu/ort-cpu` | integrity | run |" in out


def test_run_refuses_an_unknown_validator_before_running_anything(cli, tmp_path: Path) -> None:
    proc = cli("run", "--validators", "integrity,no_such_check", "--matrix", SMOKE,
               env={"MODELCOMPAT_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2
    assert "no_such_check" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "home" / "store").exists()


def test_run_writes_the_summary_the_model_describes(cli, demo_package, tmp_path: Path) -> None:
    out = tmp_path / "out" / "summary.json"
    proc = cli("run", "--model", str(demo_package.root), "--matrix", SMOKE, "--cells", "host-ort/*",
               "--validators", "integrity,loadability", "--workers", "1", "--json", str(out),
               env={"MODELCOMPAT_HOME": str(tmp_path / "home")}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    summary = RunSummary.model_validate_json(text)
    assert summary.to_json_text() == text  # the written document is exactly the model's dump
    assert summary.verdict == "pass" and summary.trigger == "cli" and summary.flow_run_id
    assert {(r.cell, r.validator, r.status.value) for r in summary.reports} == {
        ("host-ort/cpu/ort-cpu", "integrity", "pass"), ("host-ort/cpu/ort-cpu", "loadability", "pass")}
    assert f"run {summary.run_id}: pass 2" in proc.stdout and f"summary written to {out}" in proc.stdout
    stored = Store(str(tmp_path / "home" / "store")).run(summary.run_id)
    assert stored is not None and stored.verdict == "pass"


def test_a_model_the_runtime_refuses_is_one_root_cause_in_a_real_run(cli, demo_package, tmp_path: Path) -> None:
    """IR 10 / opset 21 on onnxruntime 1.16: loadability fails once, the checks needing the model are skipped
    (blocked by it), the verdict is fail, and the terminal says the root cause once, at 80 columns."""
    from support.tinyonnx import FLOAT, one_node, onnx_package

    package = onnx_package(demo_package, tmp_path / "ir10", one_node("Softmax", FLOAT, opset=21, ir_version=10))
    out = tmp_path / "summary.json"
    proc = cli("run", "--model", str(package.root), "--cells", "ort-1.16/*", "--workers", "1", "--json", str(out),
               "--validators", "integrity,loadability,io_contract,data_contract,latency,determinism",
               env={"MODELCOMPAT_HOME": str(tmp_path / "home"), "COLUMNS": "80"}, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # fail
    summary = RunSummary.model_validate_json(out.read_text())
    assert summary.verdict == "fail"
    statuses = {r.validator: r.status.value for r in summary.reports}
    assert statuses == {"integrity": "pass", "loadability": "fail", "io_contract": "skipped",
                        "data_contract": "skipped", "latency": "skipped", "determinism": "skipped"}
    for r in summary.reports:
        if r.status.value == "skipped":
            assert r.findings[0].message.startswith("blocked by loadability.ir_version_unsupported: ")
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum(line.startswith("fail ") for line in lines) == 1
    assert proc.stdout.count("loadability.ir_version_unsupported") == 1
    assert "blocks (skipped): data_contract, determinism, io_contract, latency" in proc.stdout.replace("\n", " ")


def _fill(package_root: Path, store: Path, validators: list[str]) -> str:
    """One real run of the host-ort cell into `store`, through the run's own steps (the ones the flow calls)."""
    from modelcompat.execution.harness import check_cell
    from modelcompat.orchestration.matrix_run import finish_run, keep_cell, prepare_run

    run = prepare_run(matrix=SMOKE, model=str(package_root), validators=validators, cells="host-ort/*",
                      store=str(store), params=None, force=False, force_validators=None, offered={"local": {}})
    for job in run.jobs:
        keep_cell(run, job, check_cell(job))
    return finish_run(run, trigger="cli", flow_run_id=None).summary.run_id


def _tampered(package_root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(package_root, copy)
    manifest = yaml.safe_load((copy / "modelcompat.yaml").read_text())
    for artifact in manifest["artifacts"]:
        artifact["sha256"] = "0" * 64
    (copy / "modelcompat.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return copy


@pytest.mark.parametrize(("tampered", "validators", "verdict", "code"),
                         [(False, ["integrity", "loadability"], "pass", 0), (True, ["integrity"], "fail", 1)])
def test_a_no_change_run_without_a_server_is_recorded_without_starting_prefect_or_dask(
        demo_package, tmp_path: Path, tampered: bool, validators: list[str], verdict: str, code: int) -> None:
    package_root = _tampered(demo_package.root, tmp_path) if tampered else Path(demo_package.root)
    store, home = tmp_path / "store", tmp_path / "home"
    first = _fill(package_root, store, validators)
    out, modules = tmp_path / "out" / "again.json", tmp_path / "modules.json"
    env = {**os.environ, "MODELCOMPAT_HOME": str(home), "MODULES_OUT": str(modules), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(recording_cli("run", "--model", str(package_root), "--matrix", SMOKE, "--cells", "host-ort/*",
                                        "--validators", ",".join(validators), "--store", str(store), "--json", str(out)),
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == code, proc.stdout + proc.stderr  # the stored verdict's exit code, as a full run's

    # Causal evidence: the process never imported Prefect, Dask or distributed (so it started no Prefect
    # server and no cluster), and never made the home of the server a run starts for itself.
    assert modules_loaded(modules) == []
    assert not (home / "prefect").exists()

    summary = RunSummary.model_validate_json(out.read_text())
    assert summary.verdict == verdict and summary.trigger == "cli" and summary.flow_run_id is None
    assert summary.plan == {"run": 0, "cached": len(validators), "skipped": 0}
    assert {(r.validator, r.cached, r.cached_from) for r in summary.reports} == {(v, True, first) for v in validators}
    assert f"run {summary.run_id}: {verdict} {len(validators)}" in proc.stdout  # the printed matrix and verdict
    assert f"summary written to {out}" in proc.stdout
    stored = Store(str(store))
    record = stored.run(summary.run_id)
    assert record is not None and record.verdict == verdict and record.flow_run_id is None
    assert sorted(stored.runs()["run_id"]) == sorted([first, summary.run_id])
    assert {r.cached for r in stored.load_reports(summary.run_id)} == {True}


def test_one_cell_with_an_unreachable_server_configured_fails_plainly_and_stores_nothing(
        cli, demo_package, tmp_path: Path) -> None:
    from support.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/api"
    proc = cli("run", "--model", str(demo_package.root), "--matrix", SMOKE, "--cells", "host-ort/*",
               "--validators", "integrity", "--force",
               env={"MODELCOMPAT_HOME": str(tmp_path / "home"), "PREFECT_API_URL": url}, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"the Prefect API at {url} did not answer" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "home" / "store" / "runs").exists()
