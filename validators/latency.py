"""`latency`: load time, latency percentiles, throughput per concurrency level and peak RSS, against budgets.

All timed probe work runs under a machine-wide file lock (`timing_lock`), so two timed checks on one
machine never measure each other.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from pydantic import Field

from modelcompat.validators import Finding, Outcome, Params, ProbeError, Severity, ValidationContext, Validator


# The lock is machine-wide (`ctx.timing_lock`, `$MODELCOMPAT_TIMING_LOCK`, default in the system temp dir), not
# under $MODELCOMPAT_HOME: two projects (or two Dask workers with different homes) on one machine must still
# exclude each other. A Prefect global concurrency limit would do the same across machines, but needs a Prefect
# server, which the embedded CLI/CI default does not run; an OS file lock works for every worker process on one
# machine, and timing interference only happens on one machine.
@contextmanager
def timing_lock(path: Path, timeout_s: float) -> Iterator[None]:
    """Hold the timing lock at `path`; ProbeError `latency.lock_timeout` if it is not free in time."""
    try:
        with FileLock(str(path), timeout=timeout_s):
            yield
    except Timeout:
        raise ProbeError("latency.lock_timeout",
                         f"the timing lock {path} stayed taken for {timeout_s:g} s (another timed check runs on "
                         "this machine)", detail=str(path)) from None


def timing_lock_busy(path: Path) -> bool:
    """Whether another process holds the timing lock at `path` right now (asks without waiting)."""
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


class LatencyParams(Params):
    warmup: int = Field(20, ge=0, description="Untimed runs before timing (caches, allocator, lazy init).")
    iterations: int = Field(200, ge=1, description="Timed sequential runs (at least).")
    min_time_s: float = Field(0.0, ge=0, description="Keep timing sequential runs until this long has passed "
                              "(stable percentiles on fast models), up to max_iterations.")
    max_iterations: int = Field(100_000, ge=1, description="Cap on sequential runs when min_time_s extends them.")
    concurrency: list[int] = Field([1, 2], description="Concurrent requests (threads sharing one session) to "
                                   "measure throughput at.")
    throughput_time_s: float = Field(0.5, gt=0, description="How long each concurrency level runs.")
    lock_timeout_s: float = Field(900.0, gt=0, description="How long to wait for the machine-wide timing lock.")


class Latency(Validator):
    name = "latency"
    version = "1"
    description = ("Load time, p50/p90/p95/p99 latency, coefficient of variation, throughput at several "
                   "concurrency levels and peak RSS, measured under a machine-wide timing lock, against the "
                   "manifest's budgets.")
    Params = LatencyParams
    inputs = ("artifact", "manifest.budgets", "payload", "runtime", "hardware", "backend")
    reloads_model = True  # see Validator.reloads_model

    def busy(self, ctx: ValidationContext) -> bool:
        # Another cell's timed check holds the lock: let this cell's other checks run meanwhile.
        return timing_lock_busy(ctx.timing_lock)

    def validate(self, ctx: ValidationContext, params: LatencyParams) -> Outcome:
        payload = ctx.package.resolve(ctx.package.manifest.payload)
        with timing_lock(ctx.timing_lock, params.lock_timeout_s):
            # A fresh load under the lock: a load made earlier by another validator may have overlapped
            # other work, and its time is part of what this check measures.
            loaded = ctx.load_variant()
            bench = ctx.request(
                "bench", inputs=str(payload), warmup=params.warmup, iterations=params.iterations,
                min_time_s=params.min_time_s, max_iterations=params.max_iterations,
                concurrency=params.concurrency, throughput_time_s=params.throughput_time_s)
        times = np.asarray(bench["run_times_ms"], dtype=np.float64)
        p50, p90, p95, p99 = np.percentile(times, [50, 90, 95, 99])
        mean = float(times.mean())
        metrics: dict[str, float] = {
            "load_time_ms": float(loaded["load_time_ms"]),
            "p50_latency_ms": float(p50), "p90_latency_ms": float(p90),
            "p95_latency_ms": float(p95), "p99_latency_ms": float(p99),
            "mean_latency_ms": mean, "latency_cv": float(times.std() / mean) if mean > 0 else 0.0,
            "iterations": float(times.size),
        }
        for level in bench.get("throughput") or []:
            metrics[f"throughput_per_s_c{level['concurrency']}"] = float(level["throughput_per_s"])
        if bench.get("peak_rss_mb") is not None:
            metrics["peak_rss_mb"] = float(bench["peak_rss_mb"])

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
            findings.append(Finding(
                code="latency.budget_exceeded", severity=Severity.ERROR, step="bench",
                message=f"{metric} is {observed:.4g} {unit}, over the budget {budget_name} ≤ {budget:g} {unit} "
                        f"on {ctx.cell.id}",
                observed=f"{metric}={observed:.6g}", expected=f"{budget_name}<={budget:g}", remediation=fix))
        return Outcome(metrics=metrics, findings=findings, runtime_version=loaded.get("runtime_version"))
