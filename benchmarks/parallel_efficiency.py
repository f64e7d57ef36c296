"""`parallel_efficiency`: the default matrix on the demo package through the real flow, on 1 and 2 workers.

Runs `check_matrix.with_options(task_runner=make_task_runner(None, n))(matrix=..., model=..., store=S, force=True)`
in-process inside `prefect_api()`, after one untimed warm-up run on the same store S (isolated venv provisioned,
files cached, and a history of check durations, as a nightly run has: the flow hands cells out longest first
from it). `force=True` makes every check run again although nothing changed.

For each N: the flow's wall time; the validators' own times (sum of the reports' `duration_s`, skipped
reports excluded); the ideal = sum / N; and the execute span (earliest validator start to latest validator
end, from the reports) — the flow wall minus flow/cluster start-up and publishing. The sum excludes
what happens around the validators: runtime provisioning, probe start and `describe` (torch import).
"Scaling" = the same matrix's wall time on 2 workers vs 1; the speedup-based efficiency is
1-worker span / (2 × 2-worker span), the textbook definition (it counts per-cell work outside the
validators, e.g. probe start, on both sides).
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from benchmarks import Context, Figure, exclusive_timing, median, result, scratch

NAME = "parallel_efficiency"
TITLE = "Parallel efficiency and scaling (default matrix, real flow)"
DESCRIPTION = ("The default matrix on the demo package through check_matrix on a local Dask cluster of 1 and 2 "
               "workers: wall time vs the validators' summed time, vs the ideal (sum / N), and 2 vs 1 workers.")


def _one_run(matrix: str, model: str, store: str, workers: int, cells: str | None, force: bool = True,
             address: str | None = None) -> dict[str, Any]:
    from modelcompat.flows.check_matrix import check_matrix
    from modelcompat.orchestration.dask_runner import make_task_runner

    t0 = time.perf_counter()
    summary = check_matrix.with_options(task_runner=make_task_runner(address, workers))(
        matrix=matrix, model=model, store=store, cells=cells, trigger="cli", force=force)
    wall = time.perf_counter() - t0
    ran = [r for r in summary["reports"] if r["status"] != "skipped" and not r.get("cached")]
    busy = sum(r["duration_s"] for r in ran)
    from modelcompat.store import Store

    stored = Store(store).reports(summary["run_id"])
    stored = stored[(stored["status"] != "skipped") & ~stored["cached"].astype(bool)]
    starts = [datetime.fromisoformat(s).timestamp() for s in stored["started_at"]]
    ends = [s + d for s, d in zip(starts, stored["duration_s"], strict=True)]
    by_validator: dict[str, float] = {}
    for r in ran:
        by_validator[r["validator"]] = by_validator.get(r["validator"], 0.0) + r["duration_s"]
    statuses: dict[str, int] = {}
    for r in summary["reports"]:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"workers": workers, "wall_s": wall, "validators_sum_s": busy, "ideal_s": busy / workers,
            "execute_span_s": max(ends) - min(starts), "reports": len(summary["reports"]), "ran": len(ran),
            "statuses": statuses, "validators_sum_by_name_s": by_validator, "verdict": summary.get("verdict"), "run_id": summary["run_id"]}


def _warm_cluster_runs(matrix: str, model: str, store: str, cells: str | None,
                       repeats: int) -> dict[int, list[dict[str, Any]]]:
    """Forced runs on a cluster that outlives them (as `--dask-address` gives a nightly run over many
    models): its workers keep their probe zygotes and imports, so what is timed is the checks' CPU-bound
    part plus the per-cell fork, scheduling and publishing. Every worker's zygotes are started first, as the
    nightly flow does (`prewarm_runtimes`), then one untimed run warms the rest."""
    import os

    from distributed import Client

    from modelcompat import settings
    from modelcompat.execution.harness import prewarm_runtimes
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.orchestration.dask_runner import start_local_cluster

    runtimes = list(load_matrix(matrix).spec.runtimes)
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for n in (1, 2):
        cluster = start_local_cluster(n)
        try:
            with Client(cluster) as client:
                client.run(prewarm_runtimes, runtimes, os.path.abspath(settings.env_cache()))
            _one_run(matrix, model, store, n, cells, address=cluster.scheduler_address)
            for _ in range(repeats):
                runs[n].append(_one_run(matrix, model, store, n, cells, address=cluster.scheduler_address))
        finally:
            cluster.close()
    return runs


def run(ctx: Context) -> dict[str, Any]:
    # Its ideal ("timed checks one at a time") is exclusive timing's: measured in that mode, whatever the default.
    with exclusive_timing():
        return _run(ctx)


def _run(ctx: Context) -> dict[str, Any]:
    from modelcompat.settings import default_matrix

    ctx.prefect()
    package = ctx.demo()
    matrix = str(default_matrix())
    cells = "host-ort/*" if ctx.quick else None
    repeats = 1 if ctx.quick else 2
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with scratch("parallel") as tmp:
        store = str(tmp / "store")
        warm = _one_run(matrix, str(package.root), store, 2, cells, force=False)  # provisions the venv
        for _ in range(repeats):
            for n in (1, 2):
                runs[n].append(_one_run(matrix, str(package.root), store, n, cells))
        warm_runs = _warm_cluster_runs(matrix, str(package.root), store, cells, repeats + 1)

    def med(n: int, key: str, source: dict[int, list[dict[str, Any]]] = runs) -> float:
        return median([r[key] for r in source[n]])

    w1, w2 = med(1, "wall_s"), med(2, "wall_s")
    s1, s2 = med(1, "validators_sum_s"), med(2, "validators_sum_s")
    span1, span2 = med(1, "execute_span_s"), med(2, "execute_span_s")
    ideal2 = s2 / 2
    ww1, ww2 = med(1, "wall_s", warm_runs), med(2, "wall_s", warm_runs)
    ws2 = med(2, "validators_sum_s", warm_runs)
    wspan1, wspan2 = med(1, "execute_span_s", warm_runs), med(2, "execute_span_s", warm_runs)
    wideal2 = ws2 / 2
    # The work, measured where nothing waits (1 worker): all checks, and the timed ones (latency), which the
    # machine-wide timing lock runs one at a time by design (latency fidelity needs the cores to itself).
    # No schedule on N workers beats max(work / N, timed work); the 2-worker validators' sum is no measure
    # of work, as it includes the lock waits and the two workers' contention.
    work1 = med(1, "validators_sum_s", warm_runs)
    timed1 = median([r["validators_sum_by_name_s"].get("latency", 0.0) for r in warm_runs[1]])
    lock_ideal2 = max(work1 / 2, timed1)
    figures = [
        Figure("2 workers: flow wall time", w2, "s", "ideal = validators' sum / 2", ideal2),
        Figure("2 workers: execute span", span2, "s", "ideal = validators' sum / 2", ideal2,
               target=">= 85 % efficiency (ratio <= 1.18)"),
        Figure("2 workers: flow wall time", w2, "s", "validators' own time, summed", s2),
        Figure("1 worker: flow wall time", w1, "s", "validators' own time, summed", s1),
        Figure("scaling: 2 workers wall time", w2, "s", "1 worker wall time", w1),
        Figure("scaling: 2 workers execute span", span2, "s", "1 worker execute span", span1),
        Figure("speedup-based efficiency: 1-worker span / 2-worker span", span1 / span2, "x", "ideal speedup on 2 workers",
               2.0, lower_is_better=False, target=">= 85 % (ratio >= 0.85)"),
        Figure("warm cluster, 2 workers: execute span", wspan2, "s", "ideal = validators' sum / 2", wideal2,
               target=">= 85 % efficiency (ratio <= 1.18)",
               note="a cluster that outlives the run, as with --dask-address: workers keep their zygotes"),
        Figure("warm cluster, 2 workers: execute span", wspan2, "s",
               "ideal with timed checks one at a time = max(1-worker sum / 2, 1-worker latency sum)", lock_ideal2,
               target=">= 85 % efficiency (ratio <= 1.18)"),
        Figure("warm cluster, 2 workers: execute span", wspan2, "s", "1-worker validators' sum / 2 (no lock)",
               work1 / 2),
        Figure("warm cluster, speedup-based efficiency: 1-worker span / 2-worker span", wspan1 / wspan2, "x",
               "ideal speedup on 2 workers", 2.0, lower_is_better=False, target=">= 85 % (ratio >= 0.85)"),
        Figure("warm cluster, 2 workers: flow wall time", ww2, "s", "cluster started by the run, 2 workers", w2),
    ]
    raw = {"warmup_run": warm, "runs": {str(n): v for n, v in runs.items()},
           "warm_cluster_runs": {str(n): v for n, v in warm_runs.items()}}
    n_ran = runs[2][0]["ran"]
    params = {"matrix": "matrices/default.yaml" + (f" (cells {cells})" if cells else ""), "model": "demo package",
              "workers": [1, 2], "repeats": repeats, "warm_cluster_repeats": repeats + 1, "checks_run": n_ran,
              "reports": runs[2][0]["reports"]}
    eff_wall, eff_span = ideal2 / w2 * 100, ideal2 / span2 * 100
    inflation = s2 / s1 if s1 else float("nan")
    names = set(runs[1][0]["validators_sum_by_name_s"]) | set(runs[2][0]["validators_sum_by_name_s"])
    growth = {v: median([r["validators_sum_by_name_s"].get(v, 0.0) for r in runs[2]])
              - median([r["validators_sum_by_name_s"].get(v, 0.0) for r in runs[1]]) for v in names}
    top = max(growth, key=growth.get) if growth else None
    why = ""
    if top is not None and s2 > s1:
        why = (f" {top} accounts for {growth[top]:.1f} s of the {s2 - s1:.1f} s increase"
               + (" (its time includes waiting for the machine-wide timing lock, which serialises timed checks)"
                  if top == "latency" else "") + ";")
    interpretation = (
        f"Cluster started by the run (`make run`): on 2 workers the {n_ran} checks that ran spent {s2:.1f} s in "
        f"validators (summed), so the ideal is {ideal2:.1f} s; the flow took {w2:.1f} s ({eff_wall:.0f} % of ideal; "
        f"{eff_span:.0f} % over the execute span); by speedup, 2 workers finish the execute span "
        f"{span1 / span2:.2f}x faster than 1 ({span1 / span2 / 2 * 100:.0f} % of the ideal 2x). The validators' own "
        f"summed time was {inflation:.2f}x the 1-worker run's ({s1:.1f} s):{why}"
        + (" two cells at once on 2 shared cores made the checks slower in sum (CPU contention, and lock waits "
           "for timed checks), so " if inflation > 1.2 else " the checks slowed each other down little, so ")
        + f"2 workers take {w2 / w1:.2f}x the 1-worker wall time ({span2 / span1:.2f}x over the execute span). "
        f"Such a run pays once per worker for what does not parallelise: cluster start, and each worker's first "
        f"probe of a runtime (its zygote importing torch, ~3 s) inside the execute span, on both sides of the "
        f"speedup. The CPU-bound part is what a cluster that outlives the run measures (workers warm, as with "
        f"`--dask-address` over a nightly's many models): there 2 workers run the execute span in "
        f"{wspan2:.1f} s against an ideal of {wideal2:.1f} s by the 2-worker validators' sum "
        f"({wideal2 / wspan2 * 100:.0f} %; target 85 %). That sum includes lock waits and contention, so the "
        f"stricter yardstick is the work measured on 1 worker: {work1:.1f} s, of which {timed1:.1f} s is latency, "
        f"timed under the machine-wide lock one check at a time by design (fidelity), so no schedule on 2 "
        f"workers beats {lock_ideal2:.1f} s: the span is {lock_ideal2 / wspan2 * 100:.0f} % of that; without "
        f"the lock, work / 2 = {work1 / 2:.1f} s would be {work1 / 2 / wspan2 * 100:.0f} %. The lock also caps the "
        f"speedup at {work1 / lock_ideal2:.2f}x here: 2 warm workers run the span {wspan1 / wspan2:.2f}x faster "
        f"than 1 ({wspan1 / wspan2 / 2 * 100:.0f} % of 2x). The whole flow takes {ww2:.1f} s on 2 warm workers "
        f"({ww1:.1f} s on 1)."
    )
    return result(figures, raw, params, interpretation)
