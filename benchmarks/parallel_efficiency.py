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

from benchmarks import Context, Figure, median, result, scratch

NAME = "parallel_efficiency"
TITLE = "Parallel efficiency and scaling (default matrix, real flow)"
DESCRIPTION = ("The default matrix on the demo package through check_matrix on a local Dask cluster of 1 and 2 "
               "workers: wall time vs the validators' summed time, vs the ideal (sum / N), and 2 vs 1 workers.")


def _one_run(matrix: str, model: str, store: str, workers: int, cells: str | None, force: bool = True) -> dict[str, Any]:
    from modelcompat.flows.check_matrix import check_matrix
    from modelcompat.orchestration import make_task_runner

    t0 = time.perf_counter()
    summary = check_matrix.with_options(task_runner=make_task_runner(None, workers))(
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


def run(ctx: Context) -> dict[str, Any]:
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

    def med(n: int, key: str) -> float:
        return median([r[key] for r in runs[n]])

    w1, w2 = med(1, "wall_s"), med(2, "wall_s")
    s1, s2 = med(1, "validators_sum_s"), med(2, "validators_sum_s")
    span1, span2 = med(1, "execute_span_s"), med(2, "execute_span_s")
    ideal2 = s2 / 2
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
    ]
    raw = {"warmup_run": warm, "runs": {str(n): v for n, v in runs.items()}}
    n_ran = runs[2][0]["ran"]
    params = {"matrix": "matrices/default.yaml" + (f" (cells {cells})" if cells else ""), "model": "demo package",
              "workers": [1, 2], "repeats": repeats, "checks_run": n_ran, "reports": runs[2][0]["reports"]}
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
        f"On 2 workers the {n_ran} checks that ran spent {s2:.1f} s in validators (summed), so the ideal is "
        f"{ideal2:.1f} s; the flow took {w2:.1f} s ({eff_wall:.0f} % of ideal; {eff_span:.0f} % over the execute span, "
        f"target 85 %); by speedup, 2 workers finish the execute span {span1 / span2:.2f}x faster than 1 "
        f"({span1 / span2 / 2 * 100:.0f} % of the ideal 2x). The validators' own summed time was {inflation:.2f}x the 1-worker run's ({s1:.1f} s):{why}"
        + (" two cells at once on 2 shared cores made the checks slower in sum (CPU contention, and lock waits "
           "for timed checks), so " if inflation > 1.2 else " the checks slowed each other down little, so ")
        + f"2 workers take {w2 / w1:.2f}x the 1-worker wall time ({span2 / span1:.2f}x over the execute span). "
        f"The gap between wall time and the summed validator time is flow and cluster start-up, runtime "
        f"provisioning, per-cell probe start (torch/onnxruntime import) and publishing, which the validators' own "
        f"times exclude."
    )
    return result(figures, raw, params, interpretation)
