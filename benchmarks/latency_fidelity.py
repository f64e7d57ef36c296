"""`latency_fidelity`: the latency validator's p50/p95 from a real `modelcompat run` vs a bare loop (issue 14).

Real models from the corpus (tests/support/extdata.py and corpus/; built with .venv-corpus, cached under
~/.cache/modelcompat/corpus), packaged with `modelcompat package`: ResNet-18 (its ONNX and torch.export
exports in one package: the cells host-ort/cpu/ort-cpu and host-torch/cpu/torch-eager) and BERT (ONNX,
host-ort/cpu/ort-cpu). Each round, per model:
- the product: `modelcompat run --model PKG --force` of the default matrix, so every other check of the
  matrix runs in the same run; the figures are the latency reports' `p50_latency_ms`/`p95_latency_ms`;
- the anchor, side by side in the same run: a bare loop of the same runtime (the probe's onnxruntime session
  options for the backend, or `torch.export.load(...).module()` under inference_mode for torch eager) on the
  package's payload, with the validator's thread count and warm-up and timed runs (from the previous round's
  report; round 0: as many runs as fit in 5 s), window after window while the run goes on. Each window holds
  the run's own timing lock exclusively, as the latency check does, so it measures under the same conditions:
  the run's Prefect server, Dask workers and probes alive, its checks kept off those cores. Each window measures
  what else used its CPUs as the check does; it is compared over its two windows nearest the validator's
  measurement (just before and just after it, so slow drift of the machine cancels out) among those no busier
  than the validator's measurement was (the run's orchestration runs outside any lock and can hit a window).
Each figure is the round with the median same-round ratio (of the rounds that had a bare window beside the check:
a run whose checks end before one is counted and left out), its note the range of ratios.
"""
from __future__ import annotations

import math
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import Context, Figure, median, percentile, result, scratch
from benchmarks.real_models import BareLoop, bare_loop, corpus_package, modelcompat_run
from modelcompat.probe.agent.modelcompat_probe_agent.precision import quantile_precision

NAME = "latency_fidelity"
TITLE = "Latency fidelity on real models (latency validator in a full run vs a bare loop)"
DESCRIPTION = ("p50/p95 per inference reported by the `latency` validator inside a `modelcompat run --force` of the "
               "default matrix (every other check of the matrix running in the same run) vs a bare loop of the same "
               "runtime with the same payload, threads and sample count, during the same run, on corpus ResNet-18 "
               "(onnxruntime and torch eager, batch 2) and BERT (onnxruntime); in partitioned timing (the default: "
               "the bare loop pinned to the validator's worker's share of the cores) and in exclusive timing "
               "(MODELCOMPAT_TIMING=exclusive, opt-in).")

# model -> [(cell, runtime kind)]
CASES: dict[str, list[tuple[str, str]]] = {
    "resnet18": [("host-ort/cpu/ort-cpu", "onnxruntime"), ("host-torch/cpu/torch-eager", "torch")],
    "bert": [("host-ort/cpu/ort-cpu", "onnxruntime")],
}
# Timing modes measured (MODELCOMPAT_TIMING) -> rounds: the default (each worker timing on its share of the cores)
# first and with more rounds, since its figures are the ones users get; then the opt-in machine-wide lock.
TIMINGS = {"partitioned": 5, "exclusive": 3}
# The bare loop's sizes before a latency report says how many runs the check warmed up and timed (round 0):
# as many runs as fit in the time the check typically measures for, so a 2 ms model is not timed on 0.2 s.
FIRST_WINDOW_S, WARMUP = 5.0, 20
# A bare window is compared only if other processes used at most this many points more of its CPUs than they did
# of the validator's while it measured: a window hit by the run's orchestration (outside any timing lock) is not
# the validator's conditions. Where none qualifies, the nearest windows are compared anyway, and the note says so.
BUSIER_BY_AT_MOST_PCT = 5.0
SETTLE_S = 0.5  # an idle onnxruntime session keeps a core spinning for ~50 ms after its last run
GAP_S = 1.0  # after each bare window, the run's own work gets the lock back for at least this long


def _samples(metrics: dict[str, Any]) -> int | None:
    for key in ("samples", "iterations"):
        if metrics.get(key):
            return int(metrics[key])
    return None


def _threads(metrics: dict[str, Any]) -> int | None:
    for key in ("intra_op_threads", "threads"):
        if metrics.get(key):
            return int(metrics[key])
    return None


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100.0


def _median_round(ratios: list[float]) -> int:
    """The round whose validator/bare ratio is the median one (with an odd count, one actual round)."""
    order = sorted(range(len(ratios)), key=ratios.__getitem__)
    return order[len(order) // 2]


def _partition_env(timing: str) -> tuple[dict[str, str], list[tuple[int, ...] | None]]:
    """The run's environment for a timing mode, and the cores each bare loop is pinned to: in partitioned timing
    one bare loop per worker's share (the default local cluster: one worker per CPU), so the validator is compared
    with the bare windows on the very cores it measured on; exclusive: one, unpinned."""
    if timing == "exclusive":
        return {"MODELCOMPAT_TIMING": timing}, [None]
    from modelcompat.execution.partition import available_cores, share
    from modelcompat.settings import workers

    return {"MODELCOMPAT_TIMING": timing}, [share(available_cores(), i, workers()) for i in range(workers())]


def _pinned_processes() -> dict[int, tuple[int, ...]]:
    """pid -> CPUs of every process pinned to fewer CPUs than this machine has (the run's partitioned workers)."""
    from modelcompat.errors import InputError
    from modelcompat.execution.partition import available_cores, parse_cores

    everything = len(available_cores())
    out: dict[int, tuple[int, ...]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                line = next((x for x in status if x.startswith("Cpus_allowed_list:")), "")
            cpus = parse_cores(line.split(":", 1)[1]) if line else ()
        except (OSError, InputError):  # a process that ended meanwhile, or a line we cannot read
            continue
        if cpus and len(cpus) < everything:
            out[int(entry)] = cpus
    return out


def _bare_windows(loops: dict[tuple[str, tuple[int, ...] | None], BareLoop], seen: dict[str, dict[str, Any]],
                  running: threading.Event, out: list[dict[str, Any]], pinned: dict[int, tuple[int, ...]]) -> None:
    """While the run is `running`: each of one share's (cell, share) bare loops in turn (each share has a thread
    of its own, as each worker times on its share side by side), each window holding that share's timing lock
    exclusively (as the latency check does), so it measures under the run's conditions — its processes and servers
    alive, its checks kept off those cores by the lock — with a gap after each for the run's work. Also notes
    which CPUs the run's pinned workers have (`pinned`), to match the validator's worker to its share."""
    from modelcompat.execution.partition import timing_lock
    from modelcompat.files.timing_lock import exclusive_timing
    from modelcompat.settings import timing_lock_path

    while running.is_set():
        for (cell, cores), loop in loops.items():
            if not running.is_set():
                return
            pinned.update(_pinned_processes())
            last = seen.get(cell, {})
            with exclusive_timing(timing_lock(timing_lock_path(), cores), label="benchmark bare loop", timeout_s=900):
                t0 = time.time()
                got = loop.time(_samples(last), int(last.get("warmup_runs") or WARMUP),
                                _threads(last) or (len(cores) if cores else None), seconds=FIRST_WINDOW_S)
                out.append({"cell": cell, "cores": cores, "t0": t0, "t1": time.time(), **got})
            time.sleep(GAP_S)


def _beside(windows: list[dict[str, Any]], cell: str, start: float, end: float) -> list[dict[str, Any]]:
    """The cell's bare windows nearest the validator's measurement: the last to end before it started and the
    first to start after it ended (either may be missing at the run's edges: then the nearest two)."""
    mine = [w for w in windows if w["cell"] == cell]
    before = [w for w in mine if w["t1"] <= start]
    after = [w for w in mine if w["t0"] >= end]
    picked = ([before[-1]] if before else []) + ([after[0]] if after else [])
    if len(picked) < 2:
        middle = (start + end) / 2
        picked = sorted(mine, key=lambda w: abs((w["t0"] + w["t1"]) / 2 - middle))[:2]
    return picked


def _alike(windows: list[dict[str, Any]], validator_other_pct: float | None) -> list[dict[str, Any]]:
    """The bare windows measured under the validator's conditions: other processes used at most
    BUSIER_BY_AT_MOST_PCT points more of their CPUs than of the validator's while it measured (all of them when
    either side could not tell)."""
    if validator_other_pct is None:
        return list(windows)
    limit = validator_other_pct + BUSIER_BY_AT_MOST_PCT
    return [w for w in windows if w.get("other_cpu_pct") is None or w["other_cpu_pct"] <= limit]


def _measure(ctx: Context, tmp: Path, model: str, rounds: int, run_args: tuple[str, ...],
             timing: str = "partitioned") -> dict[str, Any]:
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.settings import default_matrix
    from modelcompat.store import Store

    package = corpus_package(ctx, model)
    matrix = load_matrix(default_matrix())
    run_env, shares = _partition_env(timing)
    loops = {(cell, cores): bare_loop(package, kind, {**matrix.select(cell)[0].backend.model_dump(mode="json"),
                                                      "intra_op_threads": None}, cores)
             for cell, kind in CASES[model] for cores in shares}
    seen: dict[str, dict[str, Any]] = {}  # cell -> its latest validator metrics (sample count, threads)
    out: dict[str, Any] = {cell: {"validator": [], "bare": []} for cell, _ in CASES[model]}
    out["runs"] = []
    api = ctx.prefect()
    try:
        for r in range(rounds):
            time.sleep(SETTLE_S)
            windows: list[dict[str, Any]] = []
            pinned: dict[int, tuple[int, ...]] = {}
            running = threading.Event()
            running.set()
            # One thread per share: its windows hold only that share's lock, like a check on that worker.
            bare = [threading.Thread(target=_bare_windows, daemon=True,
                                     args=({k: v for k, v in loops.items() if k[1] == cores}, seen, running, windows,
                                           pinned)) for cores in shares]
            for thread in bare:
                thread.start()
            try:
                store = tmp / f"store-{model}-{timing}-{r}"
                run = modelcompat_run(package, store, tmp / f"{model}-{r}.json", api_url=api,
                                      args=("--force", *run_args), env_extra=run_env)
            finally:
                running.clear()
                for thread in bare:
                    thread.join()
            # When each check started is in the store's reports (the summary keeps durations only).
            stored = [rep for rep in Store(str(store)).load_reports(run.summary["run_id"])
                      if rep.started_at and not rep.cached]
            started = {rep.cell: rep.started_at for rep in stored if rep.validator == "latency"}
            # Only windows while the run's checks ran: before them the run starts its server, cluster and
            # imports, after them it publishes, none of it under the lock (nor measured by any check).
            spans = [(datetime.fromisoformat(rep.started_at).timestamp(), float(rep.duration_s or 0.0)) for rep in stored]
            first, last = min(t for t, _ in spans), max(t + d for t, d in spans)
            windows = [w for w in windows if w["t0"] >= first and w["t1"] <= last]
            out["runs"].append({"wall_s": run.wall_s, "returncode": run.returncode,
                                "counts": run.summary.get("counts"), "bare_windows": len(windows)})
            for cell, _kind in CASES[model]:
                reports = run.reports("latency", cell)
                if not reports or reports[0]["status"] not in ("pass", "warn") \
                        or "p50_latency_ms" not in reports[0]["metrics"]:
                    raise RuntimeError(f"{model}: no latency figures for {cell} in the run: "
                                       f"{[(x['status'], x['findings'][:1]) for x in reports]}")
                report = reports[0]
                metrics = report["metrics"]
                seen[cell] = metrics
                end = datetime.fromisoformat(started[cell]).timestamp() + float(report["duration_s"])
                start = end - float(metrics.get("measure_time_s") or report["duration_s"])
                # Partitioned: the bare windows on the CPUs the validator's worker was pinned to.
                worker = str((report.get("evidence") or {}).get("worker") or "")
                cores = pinned.get(int(worker.rsplit(":", 1)[1])) if worker.rsplit(":", 1)[-1].isdigit() else None
                same_cores = [w for w in windows if w["cell"] == cell and (cores is None or w["cores"] in (cores, None))]
                alike = _alike(same_cores, metrics.get("other_cpu_pct"))
                near = _beside(alike, cell, start, end) or _beside(same_cores, cell, start, end)
                if not near:  # the run's checks ended before a window on this share: the round has no anchor
                    out[cell]["rounds_without_anchor"] = out[cell].get("rounds_without_anchor", 0) + 1
                    continue
                times = sorted(t for w in near for t in w["times"])
                window_p50 = [percentile(w["times"], 50) for w in near]
                out[cell]["validator"].append({"p50_ms": metrics["p50_latency_ms"], "p95_ms": metrics["p95_latency_ms"],
                                               "metrics": metrics, "duration_s": report["duration_s"],
                                               "evidence": report.get("evidence")})
                out[cell]["bare"].append({"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
                                          "samples": len(times), "windows": len(near),
                                          "gap_s": [round(min(abs(w["t1"] - start), abs(w["t0"] - end)), 1)
                                                    for w in near],
                                          "threads": near[0]["threads"], "runtime": near[0]["runtime"],
                                          "other_cpu_pct": [w.get("other_cpu_pct") for w in near],
                                          "busier_windows_left_out": len(same_cores) - len(alike),
                                          # _beside picks from the alike windows whenever there is one
                                          "busier_windows_compared": not alike,
                                          "cores": near[0]["cores"], "validator_cores": cores,
                                          # The anchor's own precision (as the check computes its own) and how
                                          # far its two windows' medians drifted apart: the machine's noise.
                                          **{f"{q}_precision_pct": _pct(quantile_precision(times, level, 0.95))
                                             for q, level in (("p50", 0.5), ("p95", 0.95))},
                                          "window_drift_pct": (abs(window_p50[0] - window_p50[-1])
                                                               / min(window_p50) * 100.0)
                                          if len(window_p50) > 1 else None})
    finally:
        for loop in loops.values():
            loop.close()
    return out


def _noise_floor(ctx: Context, windows: int, seconds: float) -> dict[str, list[float]]:
    """The anchor's own spread with nothing else running: BERT's bare loop on one CPU, `windows` consecutive
    windows of `seconds` each, before any run starts. The p50s/p95s it returns bound how closely any two
    measurements of this model can agree on this machine, validator or not."""
    from modelcompat.execution.partition import available_cores

    loop = bare_loop(corpus_package(ctx, "bert"), "onnxruntime", {"provider": "CPUExecutionProvider"},
                     (available_cores()[0],))
    try:
        got = [loop.time(None, WARMUP, 1, seconds=seconds)["times"] for _ in range(windows)]
    finally:
        loop.close()
    return {"p50_ms": [percentile(t, 50) for t in got], "p95_ms": [percentile(t, 95) for t in got],
            "samples": [len(t) for t in got]}


def run(ctx: Context) -> dict[str, Any]:
    # Quick: one round each, the measured cells plus the rest of host-ort's and host-torch's, not the whole matrix.
    rounds_by_timing = {t: 1 if ctx.quick else n for t, n in TIMINGS.items()}
    run_args = ("--cells", "host-ort/*,host-torch/cpu/torch-eager") if ctx.quick else ()
    figures: list[Figure] = []
    raw: dict[str, Any] = {}
    summary: list[str] = []
    # timing -> per figure: (within ±5 %, within max(5 %, combined precision)), and its largest deviation
    verdicts: dict[str, list[tuple[bool, bool]]] = {t: [] for t in TIMINGS}
    worst = {t: 0.0 for t in TIMINGS}
    # Before any run: how far apart two windows of the bare loop alone come (the comparison's noise floor).
    floor = _noise_floor(ctx, 2 if ctx.quick else 5, 4.0)
    raw["noise_floor"] = floor
    for q in ("p50", "p95"):
        values = floor[f"{q}_ms"]
        figures.append(Figure(
            f"bert host-ort: bare loop alone on one idle CPU, {len(values)} consecutive 4 s windows: slowest "
            f"window's {q} (noise floor: nothing else running)", max(values), "ms",
            f"fastest window's {q}, same loop", min(values),
            note=f"windows' {q} in order: {', '.join(f'{v:.3f}' for v in values)} ms; samples "
                 f"{', '.join(map(str, floor['samples']))}"))
    with scratch("latency") as tmp:
        for (model, cases), timing in [(case, t) for t in TIMINGS for case in CASES.items()]:
            rounds = rounds_by_timing[timing]
            got = _measure(ctx, tmp, model, rounds, run_args, timing)
            raw[f"{model} {timing}"] = got
            for cell, _kind in cases:
                side = got[cell]
                if not side["validator"]:
                    raise RuntimeError(f"{model} {timing}: no round had a bare-loop window beside {cell}'s "
                                       f"latency check")
                compared = len(side["validator"])
                for q in ("p50", "p95"):
                    ratios = [v[f"{q}_ms"] / b[f"{q}_ms"] for v, b in zip(side["validator"], side["bare"], strict=True)]
                    i = _median_round(ratios)
                    v, b = side["validator"][i][f"{q}_ms"], side["bare"][i][f"{q}_ms"]
                    worst[timing] = max(worst[timing], abs(v / b - 1))
                    metrics = side["validator"][i]["metrics"]
                    precision = metrics.get(f"{q}_latency_ms_precision_pct")
                    reached = metrics.get("precision_reached")
                    quality = "" if precision is None else (
                        f"validator's precision ±{precision:.2g} % ({'reached' if reached else 'not reached'}); ")
                    if metrics.get("other_cpu_pct") is not None:
                        quality += f"other CPU use while it measured {metrics['other_cpu_pct']:.0f} %; "
                    bare_side = side["bare"][i]
                    combined = math.hypot(precision or 0.0, bare_side.get(f"{q}_precision_pct") or 0.0) \
                        if precision is not None and bare_side.get(f"{q}_precision_pct") is not None else None
                    deviation = abs(v / b - 1) * 100.0
                    consistent = combined is not None and deviation <= max(5.0, combined)
                    verdicts[timing].append((deviation <= 5.0, consistent))
                    quality += (f"bare loop's precision ±{bare_side[f'{q}_precision_pct']:.2g} %, combined "
                                f"±{combined:.2g} %: the deviation is {'within' if consistent else 'outside'} "
                                f"max(5 %, combined precision); " if combined is not None else "")
                    others = [f"{x:.0f} %" for x in bare_side.get("other_cpu_pct") or [] if x is not None]
                    if others:
                        quality += f"other CPU use while the bare loop measured {', '.join(others)}"
                        quality += (" (no window as quiet as the validator's: the nearest compared); "
                                    if bare_side.get("busier_windows_compared") else
                                    f" ({bare_side.get('busier_windows_left_out', 0)} busier windows of the run left "
                                    f"out); ")
                    if bare_side.get("window_drift_pct") is not None:
                        quality += f"the two bare windows' p50 differ by {bare_side['window_drift_pct']:.1f} %; "
                    threads = bare_side["threads"] or "the runtime's default"
                    mode = (", partitioned timing, the default (bare windows on the validator's CPUs)"
                            if timing == "partitioned" else ", exclusive timing (opt-in: one machine-wide lock)")
                    figures.append(Figure(
                        f"{model} {cell}: validator {q}_latency_ms in a full run{mode} (median round of {compared})", v,
                        "ms", f"bare {side['bare'][i]['runtime']} loop {q}, same run, under the run's timing lock", b,
                        target="within ±5 %",
                        note=f"{quality}same-round ratios {min(ratios):.3f}–{max(ratios):.3f}; samples validator "
                             f"{_samples(side['validator'][i]['metrics']) or '?'}, bare {side['bare'][i]['samples']} (the "
                             f"windows just before and after the validator's, {side['bare'][i]['gap_s']} s away); "
                             f"bare threads {threads}; plain medians over rounds: validator "
                             f"{median([x[f'{q}_ms'] for x in side['validator']]):.2f} ms, bare "
                             f"{median([x[f'{q}_ms'] for x in side['bare']]):.2f} ms"
                             + (f"; {rounds - compared} of {rounds} rounds had no bare window beside the check"
                                if compared < rounds else "")))
                    summary.append(f"{model} {cell.split('/')[0]} {timing} {q} {(v / b - 1) * 100:+.1f} %")
    params = {"models": "corpus resnet18 (+ resnet18_torch: one package, batch 2), bert (batch 2, sequence 16)",
              "run": "modelcompat run --model PKG --force (default matrix" + (
                  ", quick: --cells host-ort/*,host-torch/cpu/torch-eager)" if ctx.quick else ")")
              + ", Prefect server shared by the session",
              "rounds": rounds_by_timing,
              "bare_loop": "during each run, cell after cell (partitioned: one loop per worker's share, pinned to it), "
                           "each window holding the run's timing lock (that share's) exclusively, with a "
                           f"{GAP_S:g} s gap after it; the validator's warm-up runs, sample count and threads from the "
                           f"previous round's report (round 0: as many as fit in {FIRST_WINDOW_S:g} s); compared over the "
                           "windows just before and after the validator's measurement among those whose other CPU "
                           f"use was at most {BUSIER_BY_AT_MOST_PCT:g} points above the validator's"}

    def tally(timing: str) -> str:
        marks = verdicts[timing]
        return (f"{timing}: {sum(a for a, _ in marks)} of {len(marks)} figures within ±5 % (largest deviation "
                f"{worst[timing] * 100:.1f} %), {sum(c for _, c in marks)} of {len(marks)} within max(5 %, the two "
                f"measurements' combined precision at 95 %)")

    spread = {q: (max(floor[f"{q}_ms"]) / min(floor[f"{q}_ms"]) - 1) * 100.0 for q in ("p50", "p95")}
    interpretation = (
        f"With nothing else running, BERT's bare loop alone on one CPU differs from itself by up to "
        f"{spread['p50']:.1f} % (p50) and {spread['p95']:.1f} % (p95) between consecutive 4 s windows: no two "
        f"measurements of that model on this machine agree more closely than that, validator or not. "
        f"Validator vs bare loop in the median round: {'; '.join(summary)}. By timing mode — "
        f"{'; '.join(tally(t) for t in TIMINGS)}. Partitioned is the default, so its figures are the ones a run "
        f"reports; exclusive times with every core's threads on a machine that also runs the servers, and its "
        f"two bare windows a few seconds apart differ by the drift the notes give. "
        f"A p95 from the ~100 runs the check makes of a 35-100 ms model is itself only known to a few per cent "
        f"(the notes give each side's precision). The validator's "
        f"figures come from a full run of the default matrix, whose other checks run beside it on the same "
        f"cores unless the timing lock keeps them off; the bare loop runs during the same run, each window holding "
        f"the run's timing lock exclusively as the check does (the run's servers and workers alive, its checks kept "
        f"off those cores), with the same payload, thread count and sample count, and is compared over its windows "
        f"just before and after the validator's. The latency reports' own metrics (precision reached, samples, "
        f"what else ran during the measurement, where the validator reports them) are in the raw results."
    )
    return result(figures, raw, params, interpretation)
