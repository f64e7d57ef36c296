"""Faults injected into real runs (issue 8): real CLI processes, a real Prefect server, a real local Dask cluster.

The test-only validators come from `tests/support/faultplugin.py`, installed as an entry-point plugin for the CLI
process and its Dask workers only; files in the fault folder steer them while the run is going.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from modelcompat.store import Store
from support.faultplugin import attempts, plugin_env, safe
from support.procscan import children, kill_tree
from support.servers import free_port

pytestmark = pytest.mark.server
CLI = [sys.executable, "-m", "modelcompat.cli"]
BIN = Path(sys.executable).parent
ORT = "host-ort/cpu/ort-cpu"
TORCH = "host-torch/cpu/torch-eager"


def cli_env(tmp_path: Path, api_url: str | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MODELCOMPAT_HOME": str(tmp_path / "home"), **plugin_env(tmp_path / "plugin", tmp_path / "faults")}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "w")
    return subprocess.Popen([*CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, proc: subprocess.Popen | None, what: str, timeout: float = 180) -> None:
    """Poll until `predicate()` (a bounded wait for the run to reach a state, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            kill_tree(proc.pid)
            proc.wait()
    return log.read_text()


def smoke_matrix(tmp_path: Path, name: str = "faults") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name,
        "runtimes": [{"id": "host-ort", "kind": "onnxruntime", "env": "host"},
                     {"id": "host-torch", "kind": "torch", "env": "host"}],
        "hardware": [{"id": "cpu", "kind": "cpu"}],
        "backends": [{"id": "ort-cpu", "runtime": "onnxruntime", "provider": "CPUExecutionProvider"},
                     {"id": "torch-eager", "runtime": "torch", "mode": "eager"}],
    }))
    return path


def assert_complete_once(store: Store, run_id: str, cells: list[str], validators: list[str]) -> list:
    """The run is committed with exactly one report per (cell, validator): none lost, none duplicated."""
    assert run_id in set(store.runs()["run_id"])
    reports = store.load_reports(run_id)
    keys = [(r.cell, r.validator) for r in reports]
    assert sorted(keys) == sorted((c, v) for c in cells for v in validators)
    assert len(set(keys)) == len(keys)
    return reports


def test_dask_worker_killed_mid_cell_is_retried_elsewhere_and_the_run_completes(
        prefect_server: str, demo_package, tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    env = cli_env(tmp_path, prefect_server)
    (faults / f"slow-{safe(ORT)}").write_text("first")  # first attempt blocks until its worker is killed
    out, store_dir, log = tmp_path / "s.json", tmp_path / "store", tmp_path / "cli.log"
    validators = ["integrity", "loadability", "slow"]
    proc = start_cli(["run", "--matrix", str(smoke_matrix(tmp_path)), "--model", str(demo_package.root),
                      "--validators", ",".join(validators), "--store", str(store_dir), "--json", str(out),
                      "--workers", "2"], env, log)
    wait_for(lambda: any(attempts(faults, ORT)), proc, "the slow cell started")
    worker = attempts(faults, ORT)[0]
    assert worker in children(proc.pid)  # a Dask worker process of this run, not the flow itself
    os.kill(worker, signal.SIGKILL)
    text = finish(proc, log)
    assert proc.returncode == 0, text

    summary = json.loads(out.read_text())
    tried = attempts(faults, ORT)
    assert len(tried) >= 2 and tried[0] == worker and worker not in tried[1:]  # re-run by another process
    reports = assert_complete_once(Store(str(store_dir)), summary["run_id"], [ORT, TORCH], validators)
    assert {(r.cell, r.validator): r.status.value for r in reports} == {
        (c, v): "pass" for c in (ORT, TORCH) for v in validators}


def test_flow_process_killed_mid_run_commits_nothing_and_the_next_run_reuses_finished_checks(
        prefect_server: str, demo_package, tmp_path: Path) -> None:
    import pandas as pd

    faults = tmp_path / "faults"
    env = cli_env(tmp_path, prefect_server)
    (faults / f"slow-{safe(TORCH)}").write_text("wait")  # the second cell blocks: the kill lands while it runs
    store_dir, log = tmp_path / "store", tmp_path / "cli.log"
    validators = ["integrity", "loadability", "slow"]
    args = ["run", "--matrix", str(smoke_matrix(tmp_path)), "--model", str(demo_package.root),
            "--validators", ",".join(validators), "--store", str(store_dir), "--workers", "1"]
    proc = start_cli(args, env, log)
    checks = store_dir / "checks"
    wait_for(lambda: any(attempts(faults, TORCH)) and len(list(checks.glob("*.parquet"))) >= len(validators),
             proc, "the first cell's checks were kept and the second cell started")
    tree = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # the flow process dies; its workers are orphaned, then cleaned up
    proc.wait()
    for pid in tree:
        kill_tree(pid)

    store = Store(str(store_dir))
    assert store.runs().empty  # none of the killed run is visible
    assert store.reports().empty
    kept = pd.concat([pd.read_parquet(p) for p in checks.glob("*.parquet")])
    assert set(zip(kept["cell"], kept["validator"])) == {(ORT, v) for v in validators}
    (killed_run,) = set(kept["run_id"])

    (faults / f"slow-{safe(TORCH)}").unlink()
    out = tmp_path / "again.json"
    again = subprocess.run([*CLI, *args, "--json", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    summary = json.loads(out.read_text())
    assert summary["plan"] == {"run": len(validators), "cached": len(validators), "skipped": 0}
    reports = assert_complete_once(store, summary["run_id"], [ORT, TORCH], validators)
    for r in reports:
        if r.cell == ORT:
            assert r.cached and r.cached_from == killed_run
        else:
            assert not r.cached and r.status.value == "pass"
    assert list(store.runs()["run_id"]) == [summary["run_id"]]


def test_two_runs_at_once_both_land_and_build_the_runtime_once(prefect_server: str, demo_package,
                                                               tmp_path: Path) -> None:
    env_cache = tmp_path / "envs"  # not built yet: both runs want it at the same moment
    env = cli_env(tmp_path, prefect_server, MODELCOMPAT_ENV_CACHE=str(env_cache))
    matrix = tmp_path / "ort117.yaml"
    matrix.write_text(yaml.safe_dump({
        "name": "ort117",
        "runtimes": [{"id": "ort-1.17", "kind": "onnxruntime", "env": "venv",
                      "requirements": ["onnxruntime==1.17.3", "numpy<2"]}],
        "hardware": [{"id": "cpu", "kind": "cpu"}],
        "backends": [{"id": "ort-cpu", "runtime": "onnxruntime", "provider": "CPUExecutionProvider"}],
    }))
    store_dir = tmp_path / "store"
    validators = ["integrity", "loadability", "numerical_parity"]
    procs = []
    for trigger in ("nightly", "registry"):
        log = tmp_path / f"{trigger}.log"
        procs.append((start_cli(["run", "--matrix", str(matrix), "--model", str(demo_package.root), "--validators",
                                 ",".join(validators), "--store", str(store_dir), "--json",
                                 str(tmp_path / f"{trigger}.json"), "--workers", "1", "--force"], env, log), log))
    for proc, log in procs:
        text = finish(proc, log)
        assert proc.returncode == 0, text

    store = Store(str(store_dir))
    summaries = [json.loads((tmp_path / f"{t}.json").read_text()) for t in ("nightly", "registry")]
    assert sorted(store.runs()["run_id"]) == sorted(s["run_id"] for s in summaries)
    cell = "ort-1.17/cpu/ort-cpu"
    first_use = []
    for s in summaries:
        reports = assert_complete_once(store, s["run_id"], [cell], validators)
        assert {r.status.value for r in reports} == {"pass"}
        assert {r.runtime_version for r in reports if r.validator == "loadability"} == {"onnxruntime 1.17.3"}
        first_use.append(min(datetime.fromisoformat(r.started_at) for r in reports if r.validator != "integrity"))
    # One environment, complete, built once: a single spec folder with its marker; the marker was written
    # before either run used the runtime (a rebuild after a use would replace the folder and its marker).
    # (`numpy<2` floats: the folder is named by spec + resolved pins; `resolutions/` holds the resolution.)
    (env_dir,) = [p for p in env_cache.iterdir() if p.is_dir() and p.name != "resolutions"]
    marker = json.loads((env_dir / "modelcompat-env.json").read_text())
    assert marker["resolved"]["onnxruntime"] == "1.17.3"
    assert datetime.fromisoformat(marker["created"]) <= min(first_use)
    assert not list(env_dir.glob("*.tmp"))
    envs = {r.evidence.environment_fingerprint for s in summaries for r in store.load_reports(s["run_id"])
            if r.validator == "loadability"}
    assert len(envs) == 1


class OwnServer:
    """A `prefect server start` of this test's own, on a fixed port and PREFECT_HOME, that can be stopped
    and started again on the same port (same database)."""

    def __init__(self, home: Path) -> None:
        self.home, self.port, self.proc = home, free_port(), None
        self.url = f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        env = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_UI_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "server.log", "a")
        self.proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                      str(self.port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(self.healthy, self.proc, "the Prefect server answered", timeout=120)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def test_prefect_server_down_mid_run_then_back(demo_package, tmp_path: Path) -> None:
    server = OwnServer(tmp_path / "prefect-home")
    server.start()
    try:
        faults = tmp_path / "faults"
        env = cli_env(tmp_path, server.url)
        (faults / f"slow-{safe(TORCH)}").write_text("wait")
        out, store_dir, log = tmp_path / "s.json", tmp_path / "store", tmp_path / "cli.log"
        validators = ["integrity", "slow"]
        proc = start_cli(["run", "--matrix", str(smoke_matrix(tmp_path)), "--model", str(demo_package.root),
                          "--validators", ",".join(validators), "--store", str(store_dir), "--json", str(out),
                          "--workers", "1"], env, log)
        wait_for(lambda: any(attempts(faults, TORCH)), proc, "the last cell started")
        server.kill()
        # The cell finishes while the API is gone: its task must report its state to a server that is not there.
        (faults / "release").write_text("go")
        time.sleep(3)  # the outage (not an assertion)
        server.start()
        text = finish(proc, log)
        assert proc.returncode == 0, text
        summary = json.loads(out.read_text())
        # The restarted server (same database) saw the flow run to its end.
        with urllib.request.urlopen(f"{server.url}/flow_runs/{summary['flow_run_id']}", timeout=30) as resp:
            assert json.loads(resp.read())["state_type"] == "COMPLETED"
    finally:
        server.kill()
    # Nothing dropped: every report of the run is in the store. (What Prefect can lose is telemetry: a task-run
    # state event emitted during the outage; the client logs "event data ... may be lost" — docs/reliability.md.)
    assert_complete_once(Store(str(store_dir)), summary["run_id"], [ORT, TORCH], validators)


def test_prefect_api_unreachable_fails_with_one_clear_line_and_stores_nothing(demo_package, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    env = cli_env(tmp_path, dead)
    store_dir = tmp_path / "store"
    proc = subprocess.run([*CLI, "run", "--matrix", str(smoke_matrix(tmp_path)), "--model", str(demo_package.root),
                           "--validators", "integrity", "--store", str(store_dir), "--workers", "1"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "the run did not complete" in line and dead in line
    assert "Traceback" not in proc.stdout + proc.stderr
    assert Store(str(store_dir)).runs().empty
