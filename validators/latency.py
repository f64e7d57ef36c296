"""`latency`: load time, latency percentiles and throughput per concurrency level measured to a target precision
within a time budget, peak RSS against budgets; alone on the machine (the exclusive timing lock), with what
else used the CPUs recorded.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from modelcompat.files.timing_lock import TimedWindow, TimingLockTimeout, exclusive_timing, timing_busy
from modelcompat.validators import Finding, Outcome, Params, ProbeError, Severity, ValidationContext, Validator

# Other processes using at least this share of the machine's CPU time during the measurement can explain
# its noise (on 2 cores: one busy core elsewhere is 50 %).
OTHER_CPU_NOTE_PCT = 25.0
# The bench overruns its budget by at most about one run per phase: the probe request may take this much longer
# (300 s: the probe's default request timeout, so a budget never shortens it).
BENCH_SLACK_S = 300.0


class LatencyParams(Params):
    time_budget_s: float = Field(10.0, gt=0, description="Time for the whole measurement: warm-up, latency and "
                                 "every throughput level (time an early stop saves goes to the next phase).")
    precision: float = Field(0.02, gt=0, lt=1, description="Target relative precision of p50, p95 and of each "
                             "throughput level (0.02 = ±2 %): measuring stops once it is reached.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of that precision.")
    min_samples: int = Field(50, ge=1, description="Sequential runs to time at least before stopping early.")
    concurrency: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="Concurrent requests (threads sharing one session) to measure throughput at; "
                          "None: 1 and the worker's core count; []: none.")
    lock_timeout_s: float = Field(900.0, gt=0, description="How long to wait for the machine-wide timing lock.")


def _pct(value: Any) -> float | None:
    return None if value is None else float(value) * 100.0


class Latency(Validator):
    name = "latency"
    version = "3"  # 3: a p95 over budget on a shared machine whose median met it is inconclusive (warn)
    description = ("Load time, p50/p90/p95/p99 latency and throughput at 1 and N concurrent requests, each "
                   "measured until it is within a target precision or a time budget runs out, alone on the "
                   "machine (exclusive timing lock) or on its worker's share of the cores (partitioned "
                   "timing), against the manifest's budgets.")
    Params = LatencyParams
    # `timing`: a measurement on a share of the cores is not the one on the whole machine (partitioned only).
    inputs = ("artifact", "manifest.budgets", "payload", "runtime", "hardware", "backend", "timing")
    reloads_model = True  # see Validator.reloads_model
    timed = True  # takes the timing lock exclusively itself (Validator.timed)

    def busy(self, ctx: ValidationContext) -> bool:
        # A timed or untimed check holds the lock elsewhere: let this cell's other checks run meanwhile.
        return timing_busy(ctx.timing_lock)

    def validate(self, ctx: ValidationContext, params: LatencyParams) -> Outcome:
        payload = ctx.package.resolve(ctx.package.manifest.payload)
        try:
            with exclusive_timing(ctx.timing_lock, label=f"{ctx.cell.id} latency",
                                  timeout_s=params.lock_timeout_s) as window:
                # A fresh load under the lock: a load made earlier by another validator may have overlapped
                # other work, and its time is part of what this check measures.
                loaded = ctx.load_variant()
                bench = ctx.request(
                    "bench", inputs=str(payload), time_budget_s=params.time_budget_s, precision=params.precision,
                    confidence=params.confidence, min_samples=params.min_samples, concurrency=params.concurrency,
                    timeout_s=params.time_budget_s + BENCH_SLACK_S)
        except TimingLockTimeout as exc:
            raise ProbeError("latency.lock_timeout",
                             f"{exc} (another timed check runs on this machine); raise lock_timeout_s or run "
                             "fewer timed checks at once", detail=str(exc.path)) from None
        metrics = _metrics(loaded, bench, window)
        findings = _budget_findings(ctx, metrics)
        findings += _measurement_findings(ctx, params, bench, window, metrics)
        return Outcome(metrics=metrics, findings=findings, runtime_version=loaded.get("runtime_version"))


def _metrics(loaded: dict[str, Any], bench: dict[str, Any], window: TimedWindow) -> dict[str, float]:
    latency = bench["latency"]
    metrics: dict[str, float] = {"load_time_ms": float(loaded["load_time_ms"])}
    for name in ("p50_latency_ms", "p90_latency_ms", "p95_latency_ms", "p99_latency_ms", "mean_latency_ms",
                 "latency_cv"):
        metrics[name] = float(latency[name])
    for q in ("p50", "p95"):
        if latency.get(f"{q}_precision") is not None:
            metrics[f"{q}_latency_ms_precision_pct"] = _pct(latency[f"{q}_precision"])  # type: ignore[assignment]
    metrics.update({"precision_reached": float(bool(latency["reached"])), "samples": float(latency["samples"]),
                    "measure_time_s": float(bench["time_s"]), "warmup_runs": float(bench["warmup"]["runs"]),
                    "lock_wait_s": float(window.waited_s), "lock_other_holders": float(len(window.others))})
    for level in bench.get("throughput") or []:
        c = int(level["concurrency"])
        metrics[f"throughput_per_s_c{c}"] = float(level["throughput_per_s"])
        metrics[f"throughput_c{c}_precision_reached"] = float(bool(level["reached"]))
        if level.get("precision") is not None:
            metrics[f"throughput_c{c}_precision_pct"] = _pct(level["precision"])  # type: ignore[assignment]
    for key in ("peak_rss_mb", "other_cpu_pct", "cores"):  # cores: the CPUs the probe could use (its affinity)
        if bench.get(key) is not None:
            metrics[key] = float(bench[key])
    if loaded.get("intra_op_threads"):
        metrics["intra_op_threads"] = float(loaded["intra_op_threads"])
    return metrics


def _budget_findings(ctx: ValidationContext, metrics: dict[str, float]) -> list[Finding]:
    findings: list[Finding] = []
    budgets = ctx.package.manifest.budgets
    checks = [("p95_latency_ms", budgets.p95_latency_ms, "ms",
               "profile the model on this backend (onnxruntime: SessionOptions.enable_profiling; torch: "
               "torch.profiler), try a higher graph optimisation level, fewer intra-op threads for small "
               "models, a smaller model or batch — or raise budgets.p95_latency_ms if the budget is wrong"),
              ("peak_rss_mb", budgets.peak_memory_mb, "MB",
               "check weights and arena sizes (onnxruntime: enable_cpu_mem_arena=False, "
               "enable_mem_pattern), use a lower precision, or raise budgets.peak_memory_mb")]
    for metric, budget, unit, fix in checks:
        observed = metrics.get(metric)
        if budget is None or observed is None or observed <= budget:
            continue
        budget_name = "peak_memory_mb" if metric == "peak_rss_mb" else metric
        message = f"{metric} is {observed:.4g} {unit}, over the budget {budget_name} ≤ {budget:g} {unit} on {ctx.cell.id}"
        if metric == "p95_latency_ms" and _contended(metrics, budget):
            other = metrics["other_cpu_pct"]
            findings.append(Finding(
                code="latency.budget_inconclusive", severity=Severity.WARN, step="bench",
                message=f"{message}, but its median ({metrics['p50_latency_ms']:.4g} ms) is within it and other "
                        f"processes used {other:.0f} % of the machine's CPU meanwhile: the tail may be theirs",
                observed=f"{metric}={observed:.6g}; other_cpu_pct={other:.3g}", expected=f"{budget_name}<={budget:g}",
                remediation="re-run on a quiet worker (nothing else running) to decide; if it is still over, " + fix))
            continue
        findings.append(Finding(
            code="latency.budget_exceeded", severity=Severity.ERROR, step="bench", message=message,
            observed=f"{metric}={observed:.6g}", expected=f"{budget_name}<={budget:g}", remediation=fix))
    return findings


def _contended(metrics: dict[str, float], budget: float) -> bool:
    """A p95 over budget that other processes may have caused: the median run met the budget, and others used a
    share of the CPU that can explain a tail (a busy CI box must not fail a model its quiet fleet serves in
    time). A median over the budget is the model's own: that stays a fail however busy the machine was."""
    other = metrics.get("other_cpu_pct")
    return other is not None and other >= OTHER_CPU_NOTE_PCT and metrics["p50_latency_ms"] <= budget


# Findings about the measurement, not the model, are `info`: a `warn` would turn the check's status to warn,
# which the baseline comparison grades as a regression (pass → warn) — the machine's noise blamed on the
# model. The metrics (`precision_reached`, `*_precision_pct`, `other_cpu_pct`) carry it, and the comparison
# reads them: an unstable measurement is never a regression.
def _measurement_findings(ctx: ValidationContext, params: LatencyParams, bench: dict[str, Any],
                          window: TimedWindow, metrics: dict[str, float]) -> list[Finding]:
    findings: list[Finding] = []
    target = params.precision * 100.0
    short = []
    if not bench["latency"]["reached"]:
        achieved = [f"{q} ±{metrics[f'{q}_latency_ms_precision_pct']:.3g} %" if f"{q}_latency_ms_precision_pct"
                    in metrics else f"{q} unbounded" for q in ("p50", "p95")]
        short.append(f"latency ({', '.join(achieved)} after {int(metrics['samples'])} runs)")
    for level in bench.get("throughput") or []:
        if not level["reached"]:
            pct = _pct(level.get("precision"))
            short.append(f"throughput at concurrency {level['concurrency']} ("
                         + (f"±{pct:.3g} %" if pct is not None else "too few windows") + ")")
    if short:
        findings.append(Finding(
            code="latency.precision_not_reached", severity=Severity.INFO, step="bench",
            message=f"the {params.time_budget_s:g} s budget ran out before ±{target:g} % at "
                    f"{params.confidence:.0%} confidence on {ctx.cell.id}: " + "; ".join(short)
                    + " — these figures are unstable, and the baseline comparison will not call them a regression",
            observed="; ".join(short), expected=f"precision<=±{target:g}%",
            remediation="raise time_budget_s (latency params, in the matrix or the package manifest), or run on a "
                        "quieter worker; a slow model needs about 75 runs for its p95 to be bounded at all"))
    other = bench.get("other_cpu_pct")
    if window.others or (other is not None and other >= OTHER_CPU_NOTE_PCT):
        what = []
        if other is not None:
            what.append(f"other processes used {other:.0f} % of the machine's CPU time "
                        f"({bench.get('other_cpu_cores') or 0:.2g} cores)")
        if window.others:
            what.append("timing-lock holders: " + ", ".join(window.others))
        findings.append(Finding(
            code="latency.shared_machine", severity=Severity.INFO, step="bench",
            message=f"the measurement on {ctx.cell.id} was not alone on the machine: " + "; ".join(what)
                    + " — enough to explain noise in its figures",
            observed="; ".join(what), expected=f"other_cpu_pct<{OTHER_CPU_NOTE_PCT:g}",
            remediation="run timed checks on a worker with nothing else running (a dedicated machine or cores), "
                        "or outside other jobs' hours"))
    return findings
