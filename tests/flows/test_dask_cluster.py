"""Beyond one machine (issue 7): `modelcompat run --dask-address` on a real `dask scheduler` with separate
`dask worker` processes on 127.0.0.1, one of them offering `--resources GPU=1`.

Every worker shares one env cache and one store (a local path standing in for a shared filesystem or an
object-storage URI, docs/scaling.md) and reports to the same Prefect server. Routing is proven from the
reports themselves: each check records `evidence.worker` (hostname:pid of the process that ran it), matched
against the pids the Dask workers give `client.run(os.getpid)`.

This machine has no GPU and no CUDA build of onnxruntime, so a CUDA cell that reaches the GPU worker runs
and honestly fails with `loadability.provider_unavailable`: it was routed there, not skipped. With the GPU
worker gone, the same cells are planned `skipped`, with the missing resource named.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelcompat.matrix.spec import load_matrix
from modelcompat.runtime.environments import MARKER
from modelcompat.store import Store
from support.servers import free_port, stop_group, wait_until

pytestmark = pytest.mark.server
BIN = Path(sys.executable).parent
CLI = [sys.executable, "-m", "modelcompat.cli"]
CUDA_BACKENDS = ("ort-cuda", "ort-cuda-basic", "ort-cuda-noopt")
CUDA_CELLS = {f"host-ort/cuda/{b}" for b in CUDA_BACKENDS}
CPU_CELLS = {"host-ort/cpu/ort-cpu", "ort-1.16/cpu/ort-cpu"}
VALIDATORS = "integrity,loadability"


def _matrix(path: Path) -> Path:
    """Two CPU cells (one a venv runtime) and three CUDA cells: if placement were random among three
    workers, all three CUDA cells landing on the GPU worker would happen 1 time in 27."""
    path.write_text(yaml.safe_dump({
        "name": "dask-cluster",
        "runtimes": [
            {"id": "host-ort", "kind": "onnxruntime", "env": "host"},
            {"id": "ort-1.16", "kind": "onnxruntime", "env": "venv",
             "requirements": ["onnxruntime==1.16.3", "numpy<2"]},
        ],
        "hardware": [{"id": "cpu", "kind": "cpu"}, {"id": "cuda", "kind": "cuda", "resources": {"GPU": 1}}],
        "backends": [
            {"id": "ort-cpu", "runtime": "onnxruntime", "provider": "CPUExecutionProvider"},
            {"id": "ort-cuda", "runtime": "onnxruntime", "provider": "CUDAExecutionProvider"},
            {"id": "ort-cuda-basic", "runtime": "onnxruntime", "provider": "CUDAExecutionProvider",
             "graph_optimization": "basic"},
            {"id": "ort-cuda-noopt", "runtime": "onnxruntime", "provider": "CUDAExecutionProvider",
             "graph_optimization": "disable"},
        ],
        "constraints": [
            {"when": {"backend": list(CUDA_BACKENDS)}, "require": {"hardware": "cuda"}},
            {"when": {"backend": "ort-cpu"}, "require": {"hardware": "cpu"}},
        ],
        "exclude": [{"runtime": "ort-1.16", "hardware": "cuda"}],
    }, sort_keys=False))
    return path


class Cluster:
    """A `dask scheduler` and named `dask worker` processes, each in its own process group."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[Any]] = {}

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        log.close()  # the child holds its own copy of the descriptor

    def start_scheduler(self) -> None:
        self._spawn("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--no-dashboard"])

    def start_worker(self, name: str, *extra: str) -> None:
        self._spawn(name, [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1", "--name", name,
                           "--nworkers", "1", "--nthreads", "1", "--no-dashboard", *extra])

    def stop(self, name: str) -> None:
        stop_group(self.procs.pop(name), timeout=30)

    def stop_all(self) -> None:
        for name in [n for n in self.procs if n != "scheduler"] + ["scheduler"]:
            if name in self.procs:
                self.stop(name)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.root.glob("*.log")))


@pytest.fixture
def shared(tmp_path: Path) -> dict[str, Path]:
    """One local path every worker and the flow can reach: env cache and store."""
    root = tmp_path / "shared"
    paths = {"env_cache": root / "envs", "store": root / "store"}
    for p in paths.values():
        p.mkdir(parents=True)
    return paths


@pytest.fixture
def cluster(tmp_path: Path, prefect_server: str, shared: dict[str, Path]) -> Iterator[Cluster]:
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_ENV_CACHE": str(shared["env_cache"]),
           "MODELCOMPAT_STORE": str(shared["store"]), "DASK_LOGGING__DISTRIBUTED": "warning",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    logs = tmp_path / "cluster-logs"
    logs.mkdir()
    c = Cluster(logs, env)
    try:
        c.start_scheduler()
        c.start_worker("cpu-0")
        c.start_worker("cpu-1")
        c.start_worker("gpu-0", "--resources", "GPU=1")
        yield c
    finally:
        c.stop_all()


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def _by_check(summary: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["cell"], r["validator"]): r for r in summary["reports"]}


def test_cuda_cells_run_only_on_the_gpu_worker_and_envs_and_reports_are_shared(
        cluster: Cluster, prefect_server: str, shared: dict[str, Path], demo_package, tmp_path: Path) -> None:
    from distributed import Client

    matrix_path = _matrix(tmp_path / "dask-cluster.yaml")
    cells = load_matrix(matrix_path).cells
    assert {c.id for c in cells} == CUDA_CELLS | CPU_CELLS
    venv_runtime = next(c.runtime for c in cells if c.runtime.id == "ort-1.16")
    # `numpy<2` floats, so its venv folder is `<spec_hash>-<hash of the resolved pins>` (docs/caching.md).
    def markers() -> list[Path]:
        return list(shared["env_cache"].glob(f"{venv_runtime.spec_hash()}*/{MARKER}"))

    assert not markers()

    client = Client(cluster.address, timeout=60)
    try:
        try:
            client.wait_for_workers(3, timeout=90)
        except Exception:
            pytest.fail("the Dask workers did not join:\n" + cluster.logs())
        host = socket.gethostname()
        pids = client.run(os.getpid)  # worker address -> pid of the process that runs tasks
        resources = {a: w.get("resources") or {} for a, w in client.scheduler_info()["workers"].items()}
        worker_ids = {a: f"{host}:{pid}" for a, pid in pids.items()}
        gpu_ids = {worker_ids[a] for a, res in resources.items() if res.get("GPU", 0) >= 1}
        assert len(gpu_ids) == 1 and len(worker_ids) == 3
        (gpu_id,) = gpu_ids

        # The CLI process: same shared cache and store, same Prefect server, the cluster's address.
        env = {**cluster.env, "MODELCOMPAT_HOME": str(tmp_path / "cli-home")}
        base = ["run", "--matrix", str(matrix_path), "--model", str(demo_package.root), "--validators", VALIDATORS,
                "--dask-address", cluster.address]
        out = tmp_path / "first.json"
        proc = _run([*base, "--json", str(out)], env)
        assert proc.returncode == 1, proc.stdout + proc.stderr + cluster.logs()  # the CUDA cells fail, honestly
        first = json.loads(out.read_text())
        checks = _by_check(first)

        # Routing: every CUDA check ran on the GPU worker, and was not skipped.
        for cell in CUDA_CELLS:
            load = checks[(cell, "loadability")]
            assert load["status"] == "fail", load
            assert [f["code"] for f in load["findings"]] == ["loadability.provider_unavailable"], load
            assert "CUDAExecutionProvider" in load["findings"][0]["message"]
            assert {checks[(cell, v)]["evidence"]["worker"] for v in VALIDATORS.split(",")} == {gpu_id}, \
                (cell, worker_ids, resources)
        # The CPU cells pass, on some worker of the cluster (any one may take them), never in the CLI process.
        for cell in CPU_CELLS:
            for v in VALIDATORS.split(","):
                assert checks[(cell, v)]["status"] == "pass", checks[(cell, v)]
                assert checks[(cell, v)]["evidence"]["worker"] in worker_ids.values()

        # The venv runtime was provisioned by the worker that ran its cell, into the shared cache (the CLI
        # only plans: it never builds an environment), and that worker really ran onnxruntime 1.16.3 there.
        old = checks[("ort-1.16/cpu/ort-cpu", "loadability")]
        assert old["runtime_version"] == "onnxruntime 1.16.3"
        assert len(markers()) == 1, sorted(p.name for p in shared["env_cache"].iterdir())
        assert json.loads(markers()[0].read_text())["resolved"]["onnxruntime"] == "1.16.3"

        # The reports are in the shared store, under this run, with where each check ran.
        store = Store(str(shared["store"]))
        stored = {(r.cell, r.validator): r for r in store.load_reports(first["run_id"])}
        assert set(stored) == set(checks)
        assert {k: (r.status.value, r.evidence.worker) for k, r in stored.items()} == {
            k: (r["status"], r["evidence"]["worker"]) for k, r in checks.items()}
        assert list(store.runs()["run_id"]) == [first["run_id"]]

        # Prefect saw one task run per cell, reported by the workers to the shared server.
        resp = httpx.post(f"{prefect_server}/task_runs/filter", timeout=30,
                          json={"flow_runs": {"id": {"any_": [first["flow_run_id"]]}}})
        resp.raise_for_status()
        assert {t["name"] for t in resp.json() if t["state_type"] == "COMPLETED"} == {
            f"check {c}" for c in CUDA_CELLS | CPU_CELLS}

        # Without any GPU worker, the CUDA cells are planned `skipped`, naming the missing resource.
        cluster.stop("gpu-0")
        wait_until(lambda: len(client.scheduler_info()["workers"]) == 2, 60, "the GPU worker to leave")
        out = tmp_path / "second.json"
        proc = _run([*base, "--json", str(out)], env)
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr + cluster.logs()
        second = _by_check(json.loads(out.read_text()))
        for cell in CUDA_CELLS:
            for v in VALIDATORS.split(","):
                report = second[(cell, v)]
                assert report["status"] == "skipped", report
                assert report["findings"][0]["code"] == "cell.hardware_unavailable"
                assert "GPU=1" in report["findings"][0]["message"], report
        for cell in CPU_CELLS:  # unchanged: reused from the shared store, not re-run
            assert all(second[(cell, v)]["status"] == "pass" and second[(cell, v)]["cached"]
                       for v in VALIDATORS.split(","))
    finally:
        client.close()
