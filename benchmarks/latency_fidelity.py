"""`latency_fidelity`: the latency validator's p50/p95 from a real `modelcompat run` vs a bare loop (issue 14).

Real models from the corpus (tests/support/extdata.py and corpus/; built with .venv-corpus, cached under
~/.cache/modelcompat/corpus), packaged with `modelcompat package`: ResNet-18 (its ONNX and torch.export
exports in one package: the cells host-ort/cpu/ort-cpu and host-torch/cpu/torch-eager) and BERT (ONNX,
host-ort/cpu/ort-cpu). Each round, per model, alternating which goes first:
- the product: `modelcompat run --model PKG --force` of the default matrix, so every other check of the
  matrix runs in the same run; the figures are the latency reports' `p50_latency_ms`/`p95_latency_ms`;
- the anchor: a bare loop of the same runtime (the probe's onnxruntime session options for the backend,
  or `torch.export.load(...).module()` under inference_mode for torch eager) on the package's payload,
  with the validator's thread count when its report gives one (else the runtime's default, as the
  validator's load uses) and as many warm-up and timed runs as the validator's last report says it took.
The bare loop runs alone (between runs); the validator runs inside a busy run. Each figure is the round with
the median same-round ratio (odd round count), its note the range of ratios over rounds.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks import Context, Figure, median, percentile, result, scratch
from benchmarks.real_models import bare_loop, corpus_package, modelcompat_run

NAME = "latency_fidelity"
TITLE = "Latency fidelity on real models (latency validator in a full run vs a bare loop)"
DESCRIPTION = ("p50/p95 per inference reported by the `latency` validator inside a `modelcompat run --force` of the "
               "default matrix (every other check of the matrix running in the same run) vs a bare loop of the same "
               "runtime with the same payload, threads and sample count, alternating round by round, on corpus "
               "ResNet-18 (onnxruntime and torch eager, batch 2) and BERT (onnxruntime); in exclusive timing (the "
               "default) and in partitioned timing (MODELCOMPAT_TIMING=partitioned, the bare loop pinned to one "
               "worker's share).")

# model -> [(cell, runtime kind)]
CASES: dict[str, list[tuple[str, str]]] = {
    "resnet18": [("host-ort/cpu/ort-cpu", "onnxruntime"), ("host-torch/cpu/torch-eager", "torch")],
    "bert": [("host-ort/cpu/ort-cpu", "onnxruntime")],
}
# Timing modes measured (MODELCOMPAT_TIMING): the default, and each worker timing on its share of the cores.
TIMINGS = ("exclusive", "partitioned")
# The bare loop's sizes when a latency report does not say how many runs it warmed up and timed.
DEFAULT_SAMPLES, WARMUP = 200, 20
SETTLE_S = 0.5  # an idle onnxruntime session keeps a core spinning for ~50 ms after its last run


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


def _median_round(ratios: list[float]) -> int:
    """The round whose validator/bare ratio is the median one (with an odd count, one actual round)."""
    order = sorted(range(len(ratios)), key=ratios.__getitem__)
    return order[len(order) // 2]


def _partition_env(timing: str) -> tuple[dict[str, str], tuple[int, ...] | None]:
    """The run's environment for a timing mode, and the cores its bare loop is pinned to: in partitioned timing
    the validator's probe has one worker's share (the default local cluster: one worker per CPU)."""
    if timing == "exclusive":
        return {}, None
    from modelcompat.execution.partition import available_cores, share
    from modelcompat.settings import workers

    return {"MODELCOMPAT_TIMING": timing}, share(available_cores(), 0, workers())


def _measure(ctx: Context, tmp: Path, model: str, rounds: int, run_args: tuple[str, ...],
             timing: str = "exclusive") -> dict[str, Any]:
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.settings import default_matrix

    package = corpus_package(ctx, model)
    matrix = load_matrix(default_matrix())
    run_env, pinned = _partition_env(timing)
    loops = {cell: bare_loop(package, kind, {**matrix.select(cell)[0].backend.model_dump(mode="json"),
                                             "intra_op_threads": None}, pinned)
             for cell, kind in CASES[model]}
    seen: dict[str, dict[str, Any]] = {}  # cell -> its latest validator metrics (sample count, threads)
    out: dict[str, Any] = {cell: {"validator": [], "bare": []} for cell in loops}
    out["runs"] = []
    api = ctx.prefect()
    try:
        for r in range(rounds):
            def bare(r: int) -> None:
                for cell, loop in loops.items():
                    time.sleep(SETTLE_S)
                    last = seen.get(cell, {})
                    got = loop.time(_samples(last) or DEFAULT_SAMPLES, int(last.get("warmup_runs") or WARMUP),
                                    _threads(last))
                    out[cell]["bare"].append({"p50_ms": percentile(got["times"], 50),
                                              "p95_ms": percentile(got["times"], 95), "samples": len(got["times"]),
                                              "threads": got["threads"], "runtime": got["runtime"]})

            def product(r: int) -> None:
                time.sleep(SETTLE_S)
                run = modelcompat_run(package, tmp / f"store-{model}-{timing}-{r}", tmp / f"{model}-{r}.json",
                                      api_url=api, args=("--force", *run_args), env_extra=run_env)
                out["runs"].append({"wall_s": run.wall_s, "returncode": run.returncode,
                                    "counts": run.summary.get("counts")})
                for cell in loops:
                    reports = run.reports("latency", cell)
                    if not reports or reports[0]["status"] not in ("pass", "warn") \
                            or "p50_latency_ms" not in reports[0]["metrics"]:
                        raise RuntimeError(f"{model}: no latency figures for {cell} in the run: "
                                           f"{[(x['status'], x['findings'][:1]) for x in reports]}")
                    metrics = reports[0]["metrics"]
                    seen[cell] = metrics
                    out[cell]["validator"].append({"p50_ms": metrics["p50_latency_ms"],
                                                   "p95_ms": metrics["p95_latency_ms"], "metrics": metrics,
                                                   "duration_s": reports[0]["duration_s"],
                                                   "evidence": reports[0].get("evidence")})

            # Alternate which side goes first: neither always gets the warmer (or busier) slot. The product goes
            # first in round 0, so every bare loop has a validator report to take its sample counts from.
            for side in ((product, bare) if r % 2 == 0 else (bare, product)):
                side(r)
    finally:
        for loop in loops.values():
            loop.close()
    return out


def run(ctx: Context) -> dict[str, Any]:
    rounds = 1 if ctx.quick else 3
    # Quick: the measured cells plus the rest of host-ort's and host-torch's, not the whole matrix.
    run_args = ("--cells", "host-ort/*,host-torch/cpu/torch-eager") if ctx.quick else ()
    figures: list[Figure] = []
    raw: dict[str, Any] = {}
    summary: list[str] = []
    worst = 0.0
    with scratch("latency") as tmp:
        for (model, cases), timing in [(case, t) for t in TIMINGS for case in CASES.items()]:
            got = _measure(ctx, tmp, model, rounds, run_args, timing)
            raw[f"{model} {timing}"] = got
            for cell, _kind in cases:
                side = got[cell]
                for q in ("p50", "p95"):
                    ratios = [v[f"{q}_ms"] / b[f"{q}_ms"] for v, b in zip(side["validator"], side["bare"], strict=True)]
                    i = _median_round(ratios)
                    v, b = side["validator"][i][f"{q}_ms"], side["bare"][i][f"{q}_ms"]
                    worst = max(worst, abs(v / b - 1))
                    metrics = side["validator"][i]["metrics"]
                    precision = metrics.get(f"{q}_latency_ms_precision_pct")
                    reached = metrics.get("precision_reached")
                    quality = "" if precision is None else (
                        f"validator's precision ±{precision:.2g} % ({'reached' if reached else 'not reached'}); ")
                    if metrics.get("other_cpu_pct") is not None:
                        quality += f"other CPU use while it measured {metrics['other_cpu_pct']:.0f} %; "
                    threads = side["bare"][i]["threads"] or "the runtime's default"
                    mode = "" if timing == "exclusive" else f", {timing} timing (bare loop pinned alike)"
                    figures.append(Figure(
                        f"{model} {cell}: validator {q}_latency_ms in a full run{mode} (median round of {rounds})", v,
                        "ms", f"bare {side['bare'][i]['runtime']} loop {q}, same round, alone", b, target="within ±5 %",
                        note=f"{quality}same-round ratios {min(ratios):.3f}–{max(ratios):.3f}; samples validator "
                             f"{_samples(side['validator'][i]['metrics']) or '?'}, bare {side['bare'][i]['samples']}; "
                             f"bare threads {threads}; plain medians over rounds: validator "
                             f"{median([x[f'{q}_ms'] for x in side['validator']]):.2f} ms, bare "
                             f"{median([x[f'{q}_ms'] for x in side['bare']]):.2f} ms"))
                    summary.append(f"{model} {cell.split('/')[0]}{'' if timing == 'exclusive' else ' ' + timing} {q} "
                                   f"{(v / b - 1) * 100:+.1f} %")
    params = {"models": "corpus resnet18 (+ resnet18_torch: one package, batch 2), bert (batch 2, sequence 16)",
              "run": "modelcompat run --model PKG --force (default matrix" + (
                  ", quick: --cells host-ort/*,host-torch/cpu/torch-eager)" if ctx.quick else ")")
              + ", Prefect server shared by the session",
              "rounds": rounds, "bare_loop": "the validator's warm-up runs and sample count from the latest run's report "
                           "(the run goes first in round 0)"}
    interpretation = (
        f"Validator vs bare loop in the median round: {'; '.join(summary)}. The largest deviation is "
        f"{worst * 100:.1f} % ({'within' if worst <= 0.05 else 'outside'} the ±5 % target). The validator's "
        f"figures come from a full run of the default matrix, whose other checks run beside it on the same "
        f"cores unless the timing lock keeps them off; the bare loop runs alone between runs, with the same "
        f"payload, thread count and sample count. The latency reports' own metrics (precision reached, samples, "
        f"what else ran during the measurement, where the validator reports them) are in the raw results."
    )
    return result(figures, raw, params, interpretation)
