"""Hardware routing decisions, and the local Dask cluster cells run on (queuing, order, preload, environment)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec
from modelcompat.matrix.resources import unavailable_reason


def _cell(resources: dict[str, float]) -> Cell:
    return Cell(runtime=RuntimeSpec(id="host-ort", kind="onnxruntime", env="host"),
                hardware=HardwareSpec(id="cuda" if resources else "cpu", kind="cuda" if resources else "cpu",
                                      resources=resources),
                backend=BackendSpec(id="ort", runtime="onnxruntime", provider="CPUExecutionProvider"))


def test_cpu_cell_runs_anywhere() -> None:
    assert unavailable_reason(_cell({}), {"w1": {}}) is None


def test_gpu_cell_is_skipped_when_no_worker_offers_a_gpu() -> None:
    reason = unavailable_reason(_cell({"GPU": 1}), {"w1": {}, "w2": {"MEM": 4}})
    assert reason is not None
    assert "GPU=1" in reason and "2 Dask worker" in reason and "--resources GPU=1" in reason


def test_gpu_cell_routes_when_one_worker_has_a_gpu() -> None:
    assert unavailable_reason(_cell({"GPU": 1}), {"w1": {}, "w2": {"GPU": 1}}) is None
    assert unavailable_reason(_cell({"GPU": 2}), {"w2": {"GPU": 1}}) is not None


# Run in a fresh interpreter: the multiprocessing forkserver (and what it preloaded) is one per process,
# so only a new process shows what a run's first local cluster does.
_CLUSTER_SCRIPT = textwrap.dedent("""
    import json, os, sys, threading, time
    import dask
    from dataclasses import dataclass
    from modelcompat.orchestration.dask_runner import DaskCellRunner

    @dataclass(frozen=True)
    class Cell:
        id: str
        hardware: object

    @dataclass(frozen=True)
    class Hardware:
        resources: dict

    @dataclass(frozen=True)
    class Job:
        cell: Cell
        total: int  # cells in this run

    def job(cid, total=1):
        return Job(Cell(cid, Hardware({})), total)

    def started(j):
        gate = os.environ["GATE"]
        order = os.path.join(gate, "order")
        with open(order, "a") as f:
            f.write(j.cell.id + "\\n")
        # A cell ends once "go" exists and the cell handed out after it has started (or it is the last):
        # a worker that frees up can then never start its next cell before the other worker has written
        # down the cell it was handed before. Causal, so a slow machine cannot reorder the file.
        while True:
            seen = open(order).read().split()
            if os.path.exists(os.path.join(gate, "go")) and len(seen) >= min(seen.index(j.cell.id) + 2, j.total):
                break
            time.sleep(0.02)
        return {"cell": j.cell.id, "gx_preloaded": "great_expectations" in sys.modules,
                "late_variable": os.environ.get("SET_AFTER_FORKSERVER"),
                "thread_caps": [os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")],
                "quiet": [dask.config.get("distributed.worker.profile.enabled"),
                          dask.config.get("distributed.admin.tick.interval")]}

    def main():
        gate = os.environ["GATE"]
        preload = ["modelcompat.validators.data_contract:import_great_expectations"]
        out = {}
        open(os.path.join(gate, "go"), "w").close()
        # inline_max_cells=0: one cell would otherwise run in this process, and this is about the cluster
        with DaskCellRunner(workers=1, inline_max_cells=0) as runner:  # a first run needing no preload starts the forkserver
            runner.submit_cells(started, [job("plain")])
            out["first_cluster"] = runner.cell_result("plain")
        os.remove(os.path.join(gate, "go"))
        os.remove(os.path.join(gate, "order"))
        with DaskCellRunner(workers=2) as runner:
            jobs = [job(c, 5) for c in ["c5", "c4", "c3", "c2", "c1"]]
            runner.submit_cells(started, jobs, preload=preload)
            # Both workers hold their first cell (each wrote it down; none ends before "go"): look at the
            # scheduler now, while the rest wait there.
            while not (os.path.exists(os.path.join(gate, "order"))
                       and len(open(os.path.join(gate, "order")).read().split()) >= 2):
                time.sleep(0.02)
            out["held"] = runner.client.run_on_scheduler(lambda dask_scheduler: {
                "queued": len(dask_scheduler.queued),
                "processing": sorted(len(w.processing) for w in dask_scheduler.workers.values())})
            open(os.path.join(gate, "go"), "w").close()
            out["results"] = [runner.cell_result(j.cell.id) for j in jobs]
            out["flow_thread_caps"] = [os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")]
        os.environ["SET_AFTER_FORKSERVER"] = "seen"  # the forkserver runs already: workers must still see it
        with DaskCellRunner(workers=1, inline_max_cells=0) as runner:
            runner.submit_cells(started, [job("again")])
            out["second_cluster"] = runner.cell_result("again")
        out["order"] = open(os.path.join(gate, "order")).read().split()
        print("RESULT " + json.dumps(out))

    if __name__ == "__main__":
        main()
""")


def test_a_local_cluster_queues_cells_hands_them_out_in_order_and_forks_preloaded_workers(tmp_path) -> None:
    script = tmp_path / "cluster.py"
    script.write_text(_CLUSTER_SCRIPT)
    caps = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")
    env = {k: v for k, v in os.environ.items() if k not in caps}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**env, "GATE": str(tmp_path)})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[0].removeprefix("RESULT "))
    # Queued on the scheduler, one cell per worker: a free worker takes the next cell at once, none
    # waits behind a busy worker for work stealing.
    assert out["held"] == {"queued": 3, "processing": [1, 1]}
    # Handed out in the order given (the flow gives them longest first), not by name: the first two at
    # once, one per worker (their start order is a race), then each to the worker that frees up.
    order = out["order"]
    assert set(order[:2]) == {"c5", "c4"} and order[2:5] == ["c3", "c2", "c1"]

    # Workers are forked from a forkserver that imported the validators' preloads once; the one a
    # first run started without them was restarted for the run that needs them.
    assert out["first_cluster"]["gx_preloaded"] is False
    assert all(r["gx_preloaded"] for r in out["results"])
    # ...and still get this process's current environment, not the forkserver's.
    assert out["second_cluster"]["late_variable"] == "seen"
    # Dask's default caps of OpenMP/MKL at 1 thread reach neither the workers nor this process: a cell's
    # probe inherits them, and torch would run single-threaded, unlike any server
    # Nor an allocator setting: the cells' probes inherit the workers' environment (and with it how malloc behaves).
    assert all(r["thread_caps"] == [None, None, None] for r in out["results"])
    # And quiet while a timed check runs: no 10 ms stack sampler, no 20 ms event-loop tick in the workers.
    assert all(r["quiet"] == [False, "1s"] for r in out["results"])
    assert out["flow_thread_caps"] == [None, None, None]


# --- one local cell: in a thread of the flow process, no cluster -----------------------------------------

def _where(job) -> dict:
    import threading
    return {"cell": job.cell.id, "pid": os.getpid(), "thread": threading.current_thread().name}


def test_one_local_cell_runs_in_this_process_and_starts_no_cluster() -> None:
    from modelcompat.orchestration.dask_runner import DaskCellRunner

    job = _Job(_cell({}))
    with DaskCellRunner(workers=2) as runner:
        runner.submit_cells(_where, [job])
        got = runner.cell_result(job.cell.id)
        assert got == {"cell": job.cell.id, "pid": os.getpid(), "thread": f"cell {job.cell.id}"}
        assert runner.ran_inline == [job.cell.id]
        assert not runner.started  # no Dask client, hence no LocalCluster, was ever created
    assert not DaskCellRunner(address="tcp://127.0.0.1:1").runs_inline(1)  # a scheduler given: always Dask
    assert not DaskCellRunner().runs_inline(2)  # several cells: a local cluster runs them side by side


def test_a_cell_started_before_the_flow_is_adopted_not_run_again() -> None:
    from modelcompat.orchestration.dask_runner import DaskCellRunner
    from modelcompat.orchestration.inline_cells import start_inline

    calls: list[str] = []

    def count(job) -> str:
        calls.append(job.cell.id)
        return "done"

    job = _Job(_cell({}))
    started = start_inline(count, [job])
    with DaskCellRunner(workers=1) as runner:
        runner.submit_cells(count, [job], started=started)
        assert runner.cell_result(job.cell.id) == "done"
        assert not runner.started
    assert calls == [job.cell.id]  # ran once: the runner waited on the started cell


class _Job:
    def __init__(self, cell: Cell) -> None:
        self.cell = cell
