"""`rerun`: a no-change re-run and a one-validator re-run vs the full run (affected-only re-runs, issue 4).

Available once modelcompat has a planner: a module `modelcompat.planning.plan` with a `make_plan`/`plan` function and a
`check_matrix` flow that takes `force_validators` (checked at run time). Until then: "not available yet".

On one fresh store, through the real flow on 2 local workers: a full run (a first run: no durations known, cells
in plan order); the same inputs again, three times, median (every
check should be reused from the store); then `force_validators=[one validator]`, which plans that
validator as "run" everywhere and reuses the rest — the stand-in for "one validator's inputs changed"
(the planner treats both the same way: that validator runs, the others are cached).
"""
from __future__ import annotations

import importlib
import inspect
import time
from typing import Any

from benchmarks import Context, Figure, NotAvailable, median, result, scratch

NAME = "rerun"
TITLE = "Affected-only re-runs vs full run"
DESCRIPTION = ("Wall time of re-running the default matrix with nothing changed, and with one validator forced, "
               "vs the full run on the same store (real flow, 2 local workers).")

CHANGED_VALIDATOR = "numerical_parity"
NO_CHANGE_REPEATS = 3


def find_planner() -> str | None:
    """Why re-runs cannot be measured, or None when the product has a planner wired into the flow."""
    try:
        module = importlib.import_module("modelcompat.planning.plan")
    except ImportError:
        return "needs affected-only re-runs (issue 4): no `modelcompat.planning.plan` module yet"
    if not any(callable(getattr(module, n, None)) for n in ("make_plan", "plan")):
        return "needs affected-only re-runs (issue 4): `modelcompat.planning.plan` has no `plan`/`make_plan` function yet"
    from modelcompat.flows.check_matrix import check_matrix

    if "force_validators" not in inspect.signature(check_matrix.fn).parameters:
        return "needs affected-only re-runs (issue 4): check_matrix does not use the planner's cache yet"
    return None


def run(ctx: Context) -> dict[str, Any]:
    missing = find_planner()
    if missing:
        raise NotAvailable(missing)
    from modelcompat.flows.check_matrix import check_matrix
    from modelcompat.orchestration.dask_runner import make_task_runner
    from modelcompat.settings import default_matrix

    ctx.prefect()
    package = ctx.demo()
    cells = "host-ort/*" if ctx.quick else None
    runs: dict[str, dict[str, Any]] = {}
    with scratch("rerun") as tmp:
        store = str(tmp / "store")
        plan = [("full", {}), *[(f"no_change_{i}", {}) for i in range(NO_CHANGE_REPEATS)],
                ("one_validator", {"force_validators": [CHANGED_VALIDATOR]})]
        for label, extra in plan:
            t0 = time.perf_counter()
            summary = check_matrix.with_options(task_runner=make_task_runner(None, 2))(
                matrix=str(default_matrix()), model=str(package.root), store=store, cells=cells, **extra)
            wall = time.perf_counter() - t0
            reports = summary["reports"]
            runs[label] = {"wall_s": wall, "reports": len(reports),
                           "cached": sum(1 for r in reports if r.get("cached")),
                           "ran": sum(1 for r in reports if not r.get("cached") and r["status"] != "skipped"),
                           "verdict": summary.get("verdict")}
    # The no-change run lasts a fraction of a second: its median over a few repeats, not one sample.
    repeats = [runs[f"no_change_{i}"] for i in range(NO_CHANGE_REPEATS)]
    runs["no_change"] = {**repeats[0], "wall_s": median([r["wall_s"] for r in repeats]),
                         "wall_s_repeats": [r["wall_s"] for r in repeats]}
    full = runs["full"]["wall_s"]
    nochange, onev = runs["no_change"], runs["one_validator"]
    figures = [
        Figure("no-change re-run wall time", nochange["wall_s"], "s", "full run wall time", full,
               target="<= 5 % (ratio <= 0.05)",
               note=f"{nochange['cached']} of {nochange['reports']} reports reused; median of {NO_CHANGE_REPEATS} runs"),
        Figure(f"one validator ({CHANGED_VALIDATOR}) re-run wall time", onev["wall_s"], "s", "full run wall time", full,
               note=f"{onev['ran']} checks ran, {onev['cached']} reused"),
    ]
    interpretation = (
        f"With nothing changed, the re-run reused {nochange['cached']} reports (the full run ran "
        f"{runs['full']['ran']} checks; the rest of its {runs['full']['reports']} reports are skipped) and took "
        f"{nochange['wall_s']:.1f} s, {nochange['wall_s'] / full * 100:.0f} % of the {full:.1f} s full run "
        f"({'within' if nochange['wall_s'] / full <= 0.05 else 'over'} the 5 % target: what remains is flow start, "
        f"planning and publishing). Re-running one validator everywhere took {onev['wall_s'] / full * 100:.0f} % "
        f"of the full run ({onev['ran']} checks ran): every cell still gets a task, a probe start and a model "
        f"load for that one validator."
    )
    return result(figures, {"runs": runs, "changed_validator": CHANGED_VALIDATOR},
                  {"matrix": "matrices/default.yaml" + (f" (cells {cells})" if cells else ""), "workers": 2}, interpretation)
