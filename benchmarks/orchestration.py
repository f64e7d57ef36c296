"""`orchestration`: what the flow's task machinery costs per (cell, validator) when the checks do nothing.

Three ways to run `cells` cells of `k` no-op checks each (`noop_cell`):

- product path: a Prefect flow mirroring check_matrix's execute step — one Prefect task per cell on the
  task runner `modelcompat.orchestration.dask_runner.make_task_runner(None, 2)` gives (DaskCellRunner: Prefect
  tasks in threads of the flow process, each handing its cell to a local Dask cluster of 2 process
  workers with `run_cell`), results collected with `as_completed` — against one Prefect server for the
  session (`prefect_api()`), as the product runs;
- plain Dask: `client.map(noop_cell, ...)` + `gather` on a LocalCluster of the same shape;
- plain Python loop over the same function.

Reported per (cell, validator), amortised over cells x k: "end to end" (the flow call, cluster start and
stop included; for Dask: cluster + client + map + close) and "execute" (submit first task → last result,
on a running cluster). Several repeats; the median counts.
"""
from __future__ import annotations

import time
from typing import Any

from benchmarks import Context, Figure, median, result

NAME = "orchestration"
TITLE = "Orchestration overhead per (cell, validator)"
DESCRIPTION = ("No-op checks, one task per cell: Prefect flow whose cell tasks hand their cell to Dask "
               "(DaskCellRunner, 2 process workers, via make_task_runner) vs plain Dask client.map vs a plain "
               "Python loop.")

WORKERS = 2


def noop_check(cell: int, validator: int) -> dict[str, Any]:
    """A trivial check: returns a tiny report-shaped dict."""
    return {"cell": cell, "validator": validator, "status": "pass", "metrics": {}}


def noop_cell(cell: int, k: int) -> list[dict[str, Any]]:
    """What a cell task does, minus the work: loop over its k checks."""
    return [noop_check(cell, v) for v in range(k)]


def _prefect_objects() -> tuple[Any, Any]:
    """The task and flow, built lazily so that importing this module does not import Prefect."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.context import FlowRunContext
    from prefect.futures import as_completed

    @task(name="bench-noop-cell", cache_policy=NO_CACHE, persist_result=False)
    def noop_cell_task(cell: int, k: int) -> list[dict[str, Any]]:
        # What check-cell costs: a thread task that waits on its cell's Dask future.
        runner = FlowRunContext.get().task_runner
        return runner.client.submit(noop_cell, cell, k, pure=False, priority=-cell).result()

    @flow(name="bench-orchestration", persist_result=False)
    def noop_matrix(cells: int, k: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        futures = [noop_cell_task.with_options(task_run_name=f"check cell-{i}").submit(i, k) for i in range(cells)]
        n, done = 0, []
        for f in as_completed(futures):
            n += len(f.result())
            done.append(time.perf_counter() - t0)
        return {"execute_s": time.perf_counter() - t0, "checks": n, "done_s": done}

    return noop_cell_task, noop_matrix


def _prefect_path(cells: int, k: int) -> tuple[float, float, list[float]]:
    from modelcompat.orchestration.dask_runner import make_task_runner

    _, noop_matrix = _prefect_objects()
    t0 = time.perf_counter()
    out = noop_matrix.with_options(task_runner=make_task_runner(None, WORKERS))(cells=cells, k=k)
    total = time.perf_counter() - t0
    if out["checks"] != cells * k:
        raise RuntimeError(f"flow ran {out['checks']} checks, expected {cells * k}")
    return total, out["execute_s"], out["done_s"]


def _dask_path(cells: int, k: int, repeats: int) -> tuple[float, list[float]]:
    """(end to end: cluster start + first map + close; execute time of every repeat on the running cluster)."""
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    startup = time.perf_counter() - t0
    executes = []
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            # pure=False: each repeat really runs (no reuse of the previous repeat's keys)
            futures = client.map(noop_cell, range(cells), [k] * cells, pure=False)
            n = sum(len(x) for x in client.gather(futures))
            executes.append(time.perf_counter() - t)
            if n != cells * k:
                raise RuntimeError(f"dask ran {n} checks, expected {cells * k}")
    finally:
        t = time.perf_counter()
        client.close()
        cluster.close()
        shutdown = time.perf_counter() - t
    return startup + executes[0] + shutdown, executes


def run(ctx: Context) -> dict[str, Any]:
    cells, k = (8, 4) if ctx.quick else (40, 8)
    repeats = 1 if ctx.quick else 3
    checks = cells * k
    ctx.prefect()  # one server for the session; its URL is inherited by the Dask worker processes

    # Plain loop (many repeats: it is microseconds).
    loop_s = []
    for _ in range(max(5, repeats)):
        t = time.perf_counter()
        n = sum(len(noop_cell(c, k)) for c in range(cells))
        loop_s.append(time.perf_counter() - t)
    assert n == checks

    dask_total, dask_exec = _dask_path(cells, k, repeats + 1)
    dask_exec = dask_exec[1:] or dask_exec  # the first map warms the workers (imports, connections)

    prefect_total, prefect_exec, prefect_steady, first_result = [], [], [], []
    for _ in range(repeats):
        total, execute, done = _prefect_path(cells, k)
        prefect_total.append(total)
        prefect_exec.append(execute)
        first_result.append(done[0])
        # Steady state: wall time per cell once both workers have returned a result (imports and
        # connections warm), i.e. the pace of the remaining cells.
        if len(done) > 2:
            prefect_steady.append((done[-1] - done[1]) / (len(done) - 2))

    ms = 1000.0 / checks
    p_exec, p_total = median(prefect_exec) * ms, median(prefect_total) * ms
    d_exec, d_total = median(dask_exec) * ms, dask_total * ms
    l_exec = median(loop_s) * ms
    figures = [
        Figure("product path, execute (per check)", p_exec, "ms", "plain Dask client.map, execute", d_exec,
               target="<= 10 ms"),
    ]
    if prefect_steady:
        figures.append(Figure("product path, steady state (per check)", median(prefect_steady) * 1000 / k, "ms",
                              "plain Dask client.map, execute (warm)", d_exec,
                              note="pace after each worker's first result: no cold-worker imports"))
    figures += [
        Figure("product path, end to end (per check)", p_total, "ms", "plain Dask, end to end (cluster start/stop)", d_total,
               target="<= 10 ms"),
        Figure("product path, execute (per check)", p_exec, "ms", "plain Python loop", l_exec),
        Figure("plain Dask client.map, execute (per check)", d_exec, "ms", "plain Python loop", l_exec),
    ]
    raw = {
        "cells": cells, "validators_per_cell": k, "checks": checks, "workers": WORKERS,
        "prefect_flow_s": prefect_total, "prefect_execute_s": prefect_exec,
        "prefect_first_result_s": first_result, "prefect_steady_s_per_cell": prefect_steady,
        "dask_end_to_end_s": dask_total, "dask_execute_s": dask_exec, "loop_s": loop_s,
        "per_cell_ms": {"prefect_execute": median(prefect_exec) * 1000 / cells,
                        "dask_execute": median(dask_exec) * 1000 / cells},
    }
    params = {"cells": cells, "validators_per_cell": k, "workers": f"{WORKERS} process workers, 1 thread each",
              "repeats": repeats}
    interpretation = (
        f"With one Prefect task per cell, the product's machinery costs {p_exec:.1f} ms per (cell, validator) once the "
        f"cluster runs ({median(prefect_exec) * 1000 / cells:.0f} ms of wall time per cell on {WORKERS} workers, spread "
        f"over its {k} checks) and "
        f"{p_total:.1f} ms end to end including cluster start/stop and flow-run bookkeeping; that is "
        f"{p_exec / d_exec:.0f}x plain Dask's {d_exec:.2f} ms. The first result takes {median(first_result):.1f} s "
        f"(cold workers) and then cells complete every "
        f"{(median(prefect_steady) if prefect_steady else float('nan')) * 1000:.0f} ms, so each Prefect task run "
        f"(its API calls for the task run and its states) is the unit cost, not the checks inside it. "
        f"{'It meets' if p_total <= 10 else 'Amortised end to end it misses'} the 10 ms target at {cells} cells x {k} checks; "
        f"since the cost is per task, it divides by the number of checks a cell runs (why the product batches a cell's "
        f"checks into one task): at this pace a cell would need ≥ ~{median(prefect_exec) * 1000 / cells / 10:.0f} "
        f"checks to bring it to 10 ms per check."
    )
    return result(figures, raw, params, interpretation)
