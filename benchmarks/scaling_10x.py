"""`scaling_10x`: the default matrix vs a generated matrix with 10x as many cells, through the real flow.

Both run like `parallel_efficiency` (`check_matrix` on a local Dask cluster of 2 workers, inside the
session's Prefect server, on the demo package), each on a fresh store so nothing is reused, after one
untimed warm-up run of the default matrix (isolated venv provisioned, files cached).

The big matrix (`scaled_matrix`) is the default one with every cell turned into `factor` real cells with
distinct ids: each runtime is repeated under new ids with the *same spec* (a venv runtime keeps its
`spec_hash`, so the venv the warm-up provisioned is reused, never built), and each backend becomes
variants that change how the model runs — onnxruntime graph optimisation levels and an fp16 model,
torch at fp32 and bf16. Per kind, repeats x variants = factor, and constraints and excludes are mapped
onto the new ids, so the default's runnable/skipped mix is kept: `factor` x as many runnable cells and
`factor` x as many checks. (Intra-op thread counts are not a backend key of the schema: they are a
probe load option the determinism validator varies itself, so they are not an axis here.)

For 10x: onnxruntime runtimes host-ort and ort-1.16 twice each x 5 CPU backends (graph optimisation
all/extended/basic/disable, fp16), host-torch five times x 3 modes x fp32/bf16: 90 cells, of which 50 run on
a CPU-only machine (the CUDA ones are planned `skipped`, as in the default's 9 cells / 5 runnable).

The default matrix runs once before and (full mode) once after the big one, so a change in machine load
shows in the anchor. Figures, as ratios against the default matrix's run: wall time (linear cost = factor x),
the validators' summed time (the work), the time outside the validators (wall minus the least the
validators alone could take on 2 workers), and wall and validator time per check — so a reader sees
whether what surrounds the validators (cluster start, planning, probe starts, publishing) grows faster
or slower than the work. `--quick`: 2x, only the `host-ort` cells and their copies, one run each.
"""
from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks import Context, Figure, NotAvailable, exclusive_timing, median, result, scratch

NAME = "scaling_10x"
TITLE = "Scaling with the work (default matrix vs 10x the cells, real flow)"
DESCRIPTION = ("The default matrix and a generated matrix with 10x as many runnable cells (same runtimes "
               "under more ids, backend variants), on the demo package through check_matrix on 2 local "
               "Dask workers: wall time, validators' summed time and cost per check, vs the default matrix.")

FACTOR, QUICK_FACTOR = 10, 2
WORKERS = 2
# Quick mode runs only the host onnxruntime cells (one runnable cell in the default matrix), as parallel_efficiency does.
QUICK_CELLS = "host-ort/*"

# Backend variants per runtime kind: (id suffix, fields set on the copy). The first is the unchanged backend.
# Each one is a different way of running the model (a real cell), all on the hardware the backend already has.
ORT_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("-extended", {"graph_optimization": "extended"}),
    ("-basic", {"graph_optimization": "basic"}),
    ("-noopt", {"graph_optimization": "disable"}),
    ("-fp16", {"precision": "fp16"}),  # the model converted to fp16 on the host, as nightly's ort-cpu-fp16
]
TORCH_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("-bf16", {"precision": "bf16"}),  # bf16 rather than fp16: CPU fp16 kernels are sparse (matrices/nightly.yaml)
]
VARIANTS = {"onnxruntime": ORT_VARIANTS, "torch": TORCH_VARIANTS}
NO_VARIANTS: list[tuple[str, dict[str, Any]]] = [("", {})]  # other families (openvino, executorch): repeats only


def _variants(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return VARIANTS.get(kind, NO_VARIANTS)


def _split(factor: int, max_variants: int) -> tuple[int, int]:
    """(runtime repeats, backend variants) with repeats x variants == factor, as many variants as available."""
    variants = max(d for d in range(1, min(factor, max_variants) + 1) if factor % d == 0)
    return factor // variants, variants


def _fresh_id(wanted: str, taken: set[str]) -> str:
    """`wanted`, or it with `-x` appended until no declared id has it (the matrix may already use `host-ort-r2`)."""
    while wanted in taken:
        wanted += "-x"
    taken.add(wanted)
    return wanted


def scaled_matrix(default_path: Path, factor: int) -> dict[str, Any]:
    """The matrix at `default_path` with every cell made into `factor` distinct cells, as a YAML-ready mapping.

    Runtimes keep their spec (only the id changes), so no new venv is needed; backends become variants.
    Constraints, excludes and includes name every id that came from the ids they named.
    """
    from modelcompat.matrix.spec import load_matrix

    loaded = load_matrix(default_path)
    spec = loaded.spec
    runtime_ids: dict[str, list[str]] = {}
    runtimes: list[dict[str, Any]] = []
    taken_runtimes = {r.id for r in spec.runtimes}
    for runtime in spec.runtimes:
        repeats, _ = _split(factor, len(_variants(runtime.kind)))
        runtime_ids[runtime.id] = [runtime.id] + [_fresh_id(f"{runtime.id}-r{i}", taken_runtimes)
                                                  for i in range(2, repeats + 1)]
        # model_copy keeps kind/env/requirements/python exactly, hence the same spec_hash (the venv cache key).
        runtimes += [runtime.model_copy(update={"id": rid}).model_dump(mode="json", exclude_defaults=True)
                     for rid in runtime_ids[runtime.id]]
    backend_ids: dict[str, list[str]] = {}
    backends: list[dict[str, Any]] = []
    taken = {b.id for b in spec.backends}
    for backend in spec.backends:
        _, n = _split(factor, len(_variants(backend.runtime)))
        # Only variants that change the backend (an `ort-cpu-fp16` has no fp16 variant to add); should a matrix
        # already use them all, pad with same-settings copies so every cell still becomes `factor` cells.
        chosen = [(suffix, fields) for suffix, fields in _variants(backend.runtime)
                  if not fields or any(getattr(backend, k) != v for k, v in fields.items())][:n]
        chosen += [(f"-copy{i}", {}) for i in range(2, 2 + n - len(chosen))]
        backend_ids[backend.id] = []
        for suffix, fields in chosen:
            new_id = _fresh_id(backend.id + suffix, taken) if suffix else backend.id
            backend_ids[backend.id].append(new_id)
            backends.append(backend.model_copy(update={"id": new_id, **fields}).model_dump(
                mode="json", exclude_defaults=True))
    expand = {"runtime": runtime_ids, "backend": backend_ids}

    def selector(sel: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for axis, ids in sel.axes().items():
            out[axis] = [new for old in ids for new in expand.get(axis, {}).get(old, [old])]
        return out

    includes = [{"runtime": r, "hardware": inc.hardware, "backend": b}
                for inc in spec.include for r in runtime_ids[inc.runtime] for b in backend_ids[inc.backend]]
    return {
        "name": f"{spec.name}-x{factor}",
        "description": f"{spec.name} with every cell made into {factor} (benchmarks/scaling_10x.py)",
        "runtimes": runtimes,
        "hardware": [h.model_dump(mode="json", exclude_defaults=True) for h in spec.hardware],
        "backends": backends,
        "constraints": [{"when": selector(c.when), "require": selector(c.require)} for c in spec.constraints],
        "exclude": [selector(s) for s in spec.exclude],
        "include": includes,
        "max_cells": max(spec.max_cells, factor * len(loaded.cells)),
    }


def write_scaled_matrix(default_path: Path, factor: int, dest: Path) -> Path:
    """Write `scaled_matrix` as YAML and check it with the real loader: `factor` x the cells, venvs unchanged."""
    from modelcompat.matrix.spec import load_matrix

    dest.write_text(yaml.safe_dump(scaled_matrix(default_path, factor), sort_keys=False))
    small, big = load_matrix(default_path), load_matrix(dest)
    if len(big.cells) != factor * len(small.cells) or len(set(big.cell_ids)) != len(big.cell_ids):
        raise AssertionError(f"{dest} has {len(big.cells)} cells, expected {factor} x {len(small.cells)}")
    venvs = {r.spec_hash() for r in small.spec.runtimes if r.env == "venv"}
    new = {r.spec_hash() for r in big.spec.runtimes if r.env == "venv"} - venvs
    if new:
        raise AssertionError(f"{dest} would need venvs the default matrix does not (spec hashes {sorted(new)})")
    return dest


def scaled_cells(pattern: str | None, runtime_ids: list[str]) -> str | None:
    """The `--cells` pattern for the scaled matrix: `host-ort/*` also selects `host-ort-r2/*`, ..."""
    if pattern is None:
        return None
    out = []
    for pat in pattern.split(","):
        runtime, sep, rest = pat.strip().partition("/")
        matched = [r for r in runtime_ids if fnmatch.fnmatchcase(r, runtime)] if sep else []
        # A runtime glob naming a default id also covers that id's repeats (`host-ort` -> `host-ort*`).
        out.append(f"{runtime}*{sep}{rest}" if matched and "*" not in runtime else pat.strip())
    return ",".join(out)


def _one_run(matrix: str, model: str, store: str, cells: str | None) -> dict[str, Any]:
    from modelcompat.flows.check_matrix import check_matrix
    from modelcompat.orchestration.dask_runner import make_task_runner

    t0 = time.perf_counter()
    summary = check_matrix.with_options(task_runner=make_task_runner(None, WORKERS))(
        matrix=matrix, model=model, store=store, cells=cells, trigger="cli")
    wall = time.perf_counter() - t0
    reports = summary["reports"]
    ran = [r for r in reports if r["status"] != "skipped" and not r.get("cached")]
    statuses: dict[str, int] = {}
    for r in reports:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    by_validator: dict[str, float] = {}
    by_cell: dict[str, float] = {}
    for r in ran:
        by_validator[r["validator"]] = by_validator.get(r["validator"], 0.0) + r["duration_s"]
        by_cell[r["cell"]] = by_cell.get(r["cell"], 0.0) + r["duration_s"]
    busy = sum(by_cell.values())
    # The least wall time the validators alone could take: a worker runs one cell at a time, so neither less
    # than the summed time spread over the workers nor less than the longest cell (a 1-cell run uses 1 worker).
    ideal = max(busy / WORKERS, max(by_cell.values(), default=0.0))
    return {"wall_s": wall, "validators_sum_s": busy, "cells": len({r["cell"] for r in reports}),
            "runnable_cells": len(by_cell), "checks_run": len(ran), "reports": len(reports),
            "wall_per_check_s": wall / len(ran) if ran else 0.0,
            "validators_per_check_s": busy / len(ran) if ran else 0.0,
            "ideal_s": ideal, "outside_validators_s": wall - ideal, "validators_sum_by_cell_s": by_cell,
            "statuses": statuses, "validators_sum_by_name_s": by_validator, "verdict": summary.get("verdict"),
            "run_id": summary["run_id"]}


def run(ctx: Context) -> dict[str, Any]:
    # Its ideal ("timed checks one at a time") is exclusive timing's: measured in that mode, whatever the default.
    with exclusive_timing():
        return _run(ctx)


def _run(ctx: Context) -> dict[str, Any]:
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.runtime.environments import existing_env
    from modelcompat.settings import default_matrix, env_cache

    ctx.prefect()
    package = ctx.demo()
    model = str(package.root)
    default = default_matrix()
    factor = QUICK_FACTOR if ctx.quick else FACTOR
    cells = QUICK_CELLS if ctx.quick else None
    with scratch("scaling") as tmp:
        big_path = write_scaled_matrix(default, factor, tmp / f"default-x{factor}.yaml")
        big = load_matrix(big_path)
        big_cells = scaled_cells(cells, [r.id for r in big.spec.runtimes])
        big.select(big_cells)  # a pattern that matches nothing fails here, before any timed run
        # Untimed: provisions the default matrix's venv(s) and warms the page cache and imports.
        warm = _one_run(str(default), model, str(tmp / "store-warm"), cells)
        missing = [r.id for r in big.spec.runtimes if r.env == "venv" and existing_env(r, env_cache()) is None]
        if missing:  # a venv build inside the timed run would swamp the figure
            raise NotAvailable(f"runtime(s) {missing} of the scaled matrix have no provisioned venv after the warm-up")
        # A fresh store per run: on a shared store the second run would reuse every check (affected-only re-runs).
        # Full mode brackets the big run with two default runs, so a change in machine load shows in the anchor.
        small_runs = [_one_run(str(default), model, str(tmp / "store-default-1"), cells)]
        big_run = _one_run(str(big_path), model, str(tmp / "store-big"), big_cells)
        if not ctx.quick:
            small_runs.append(_one_run(str(default), model, str(tmp / "store-default-2"), cells))
        matrix_text = big_path.read_text()

    def small(key: str) -> float:
        return median([r[key] for r in small_runs])

    label = f"{factor}x matrix"
    w0, w1 = small("wall_s"), big_run["wall_s"]
    s0, s1 = small("validators_sum_s"), big_run["validators_sum_s"]
    o0, o1 = small("outside_validators_s"), big_run["outside_validators_s"]
    c0, c1 = small_runs[0]["checks_run"], big_run["checks_run"]
    if not c0 or not c1:
        raise RuntimeError(f"no check ran (default {c0}, {label} {c1}): nothing to compare")
    linear = c1 / c0
    figures = [
        Figure(f"{label}: flow wall time", w1, "s", "default matrix: flow wall time", w0,
               note=f"{c1} vs {c0} checks: linear cost = {linear:.3g}x"),
        Figure(f"{label}: validators' summed time", s1, "s", "default matrix: validators' summed time", s0,
               note="the work itself"),
        Figure(f"{label}: time outside the validators", o1, "s", "default matrix: time outside the validators", o0,
               note=f"wall - max(validators' sum / {WORKERS} workers, longest cell)"),
        Figure(f"{label}: wall time per check", w1 / c1, "s", "default matrix: wall time per check", w0 / c0),
        Figure(f"{label}: validators' time per check", s1 / c1, "s", "default matrix: validators' time per check",
               s0 / c0),
    ]
    raw = {"warmup_run": warm, "default_runs": small_runs, "big_run": big_run, "big_matrix_yaml": matrix_text}
    params = {
        "default_matrix": "matrices/default.yaml" + (f" (cells {cells})" if cells else ""),
        "big_matrix": f"matrices/default.yaml x{factor}, generated by benchmarks.scaling_10x.scaled_matrix"
                      + (f" (cells {big_cells})" if big_cells else ""),
        "factor": factor, "model": "demo package", "workers": WORKERS,
        "default_runs": len(small_runs), "big_runs": 1,
        "cells": {"default": small_runs[0]["cells"], "big": big_run["cells"]},
        "runnable_cells": {"default": small_runs[0]["runnable_cells"], "big": big_run["runnable_cells"]},
        "checks_run": {"default": c0, "big": c1},
        "reports": {"default": small_runs[0]["reports"], "big": big_run["reports"]},
    }
    if ctx.quick:
        params["note"] = (f"quick: {factor}x (not {FACTOR}x) and only cells {cells} and their copies, one run each "
                          "(the default matrix's part uses 1 of the 2 workers); a smoke test, not figures to quote")
    # Which validator's time grew most beyond linear: a lock wait or contention shows up there, not in the others.
    names = {v for r in small_runs for v in r["validators_sum_by_name_s"]}
    small_by_name = {v: median([r["validators_sum_by_name_s"].get(v, 0.0) for r in small_runs]) for v in names}
    excess = {v: t - linear * small_by_name.get(v, 0.0) for v, t in big_run["validators_sum_by_name_s"].items()}
    top = max(excess, key=excess.__getitem__) if excess else None
    why = ""
    if top is not None and s1 > linear * s0 and excess[top] > 0:
        lock = (", whose time includes waiting for the machine-wide timing lock that serialises timed checks"
                if top == "latency" else "")
        why = (f" The validator furthest above linear is {top}{lock}: {excess[top]:.1f} s more than {linear:.3g}x "
               f"its default-matrix time (all validators together: {s1 - linear * s0:.1f} s more).")
    interpretation = (
        f"The {label} ran {c1} checks in {big_run['runnable_cells']} runnable cells ({big_run['cells']} in all) vs the "
        f"default's {c0} in {small_runs[0]['runnable_cells']} ({small_runs[0]['cells']}), so a linear cost would be "
        f"{linear:.3g}x. Its wall time was {w1:.1f} s, {w1 / w0:.2f}x the default's {w0:.1f} s; the validators' "
        f"summed time (the work) grew {s1 / s0:.2f}x ({s0:.1f} -> {s1:.1f} s, {s0 / c0 * 1000:.0f} -> "
        f"{s1 / c1 * 1000:.0f} ms per check: a rise per check means the checks slowed each other down "
        f"on the shared cores, or the backend variants cost more).{why} The time outside the validators (wall minus the "
        f"least the validators alone could take on {WORKERS} workers) went {o0:.1f} -> {o1:.1f} s, "
        f"{o1 / o0 if o0 > 0 else float('nan'):.2f}x, "
        + ("slower than the work: flow and cluster start-up, planning and publishing are paid once per run and "
           "amortised, " if o0 > 0 and o1 / o0 < s1 / s0 else
           "as fast as the work or faster: per-cell costs (task hand-off, probe start, model load, saving reports) "
           "dominate what surrounds the validators, ")
        + f"so the wall time per check went {w0 / c0:.2f} -> {w1 / c1:.2f} s."
    )
    return result(figures, raw, params, interpretation)
