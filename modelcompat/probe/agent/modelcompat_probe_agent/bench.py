"""`bench`: the loaded model timed to a precision within a time budget, in windows (as perf_analyzer and MLPerf
LoadGen do): warm-up until stable, sequential latencies until p50 and p95 are precise, then throughput per
concurrency level until its mean is precise; plus what else used the CPUs meanwhile and peak RSS."""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from .cpu_load import CpuMeter
from .inference import payload_call
from .precision import mean_precision, quantile, quantile_precision, summary

# Shares of the budget. Warm-up gets at most WARMUP_SHARE of it; what is left is split between the latency
# phase (LATENCY_WEIGHT) and each throughput level above 1 (weight 1), re-split after every phase so the time an
# early stop saves goes to the phases after it.
WARMUP_SHARE = 0.2
LATENCY_WEIGHT = 2.0
WINDOWS_PER_BUDGET = 50  # window length = budget / 50 (0.2 s for 10 s): the stop rule is checked per window
MIN_WINDOW_S = 0.01
MIN_WARMUP_RUNS = 5
WARMUP_WINDOW_RUNS = 3  # a warm-up window's median needs a few runs even on a slow model
MIN_THROUGHPUT_WINDOWS = 3  # after the level's first window, which is its ramp-up and is dropped


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def cores() -> int:
    """CPUs this probe may run on (its affinity mask: a pinned worker has fewer than the machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _timed_window(call: Callable[[], Any], window_s: float, deadline: float, min_runs: int = 1) -> List[float]:
    """Run sequentially for `window_s` (at least `min_runs`), never starting a run the deadline cannot fit."""
    times: List[float] = []
    end = time.perf_counter() + window_s
    while True:
        start = time.perf_counter()
        call()
        stop = time.perf_counter()
        times.append((stop - start) * 1000.0)
        last_s = stop - start
        if stop + last_s > deadline or (stop >= end and len(times) >= min_runs):
            return times


def warm_up(call: Callable[[], Any], deadline: float, window_s: float, precision: float) -> Dict[str, Any]:
    """A few runs, then windows until two consecutive windows' medians agree within `precision` (caches,
    allocator, lazy initialisation and the CPU clock have settled), or the deadline."""
    begin = time.perf_counter()
    runs, last_ms = 0, 0.0
    for _ in range(MIN_WARMUP_RUNS):
        start = time.perf_counter()
        call()
        runs, last_ms = runs + 1, (time.perf_counter() - start) * 1000.0
        if time.perf_counter() + last_ms / 1000.0 > deadline:
            break
    previous: Optional[float] = None
    stable = False
    while time.perf_counter() + last_ms / 1000.0 <= deadline:
        window = sorted(_timed_window(call, window_s, deadline, WARMUP_WINDOW_RUNS))
        runs, last_ms = runs + len(window), quantile(window, 0.5)
        if previous is not None and abs(last_ms - previous) <= precision * previous:
            stable = True
            break
        previous = last_ms
    return {"runs": runs, "time_s": time.perf_counter() - begin, "stable": stable, "run_ms": last_ms}


def measure_latency(call: Callable[[], Any], deadline: float, window_s: float, precision: float,
                    confidence: float, min_samples: int, min_windows: int = 1) -> Dict[str, Any]:
    """Sequential single runs in windows until p50 and p95 are each within `precision` at `confidence`
    (with at least `min_samples`, over at least `min_windows` windows: concurrency 1's throughput is read from
    them), or the deadline. Returns the samples' summary and achieved precision."""
    begin = time.perf_counter()
    samples: List[float] = []
    window_rates: List[float] = []  # requests per second of each window: throughput at concurrency 1
    p50_precision = p95_precision = None
    reached = False
    while True:
        window = _timed_window(call, window_s, deadline)
        samples.extend(window)
        if window and sum(window) > 0:
            window_rates.append(len(window) / (sum(window) / 1000.0))
        samples.sort()  # timsort merges the sorted old run with the new window: linear, not n log n
        p50_precision = quantile_precision(samples, 0.5, confidence)
        p95_precision = quantile_precision(samples, 0.95, confidence)
        reached = (len(samples) >= min_samples and p50_precision is not None and p95_precision is not None
                   and p50_precision <= precision and p95_precision <= precision)
        if (reached and len(window_rates) >= min_windows) or \
                time.perf_counter() + samples[len(samples) // 2] / 1000.0 > deadline:
            break
    out: Dict[str, Any] = summary(samples)
    out.update({"samples": len(samples), "time_s": time.perf_counter() - begin, "reached": reached,
                "stopped_by": "precision" if reached else "budget",
                "p50_precision": p50_precision, "p95_precision": p95_precision, "window_rates": window_rates})
    return out


def sequential_throughput(latency: Dict[str, Any], precision: float, confidence: float) -> Dict[str, Any]:
    """Throughput at concurrency 1 from the latency phase's windows: sequential single runs *are* one
    request at a time (perf_analyzer reports both from the same requests), so timing them again would
    spend budget for the same answer."""
    rates = latency["window_rates"]
    level_precision = mean_precision(rates, confidence)
    reached = len(rates) >= MIN_THROUGHPUT_WINDOWS and level_precision is not None and level_precision <= precision
    throughput = sum(rates) / len(rates) if rates else 0.0
    return {"concurrency": 1, "requests": latency["samples"], "wall_s": latency["time_s"], "windows": len(rates),
            "throughput_per_s": throughput, "precision": level_precision, "reached": reached,
            "stopped_by": "precision" if reached else "budget", "from": "latency"}


class _Windows:
    """Per-window throughput: each request counts in each window in proportion to the share of its duration
    inside it, so a window holds no quantisation error even when it fits only a few requests. Each worker
    thread adds its own requests (no per-request record is kept: the probe's peak RSS stays the model's)."""

    def __init__(self, t0: float, window_s: float, threads: int) -> None:
        self.t0, self.window_s = t0, window_s
        self.requests = [0] * threads
        self._work: List[Dict[int, float]] = [{} for _ in range(threads)]
        self._known_until = [t0] * threads  # a thread's work is known up to its last completed request

    def add(self, slot: int, start: float, end: float) -> None:
        """Called by worker `slot` after each request."""
        work, w, t0 = self._work[slot], self.window_s, self.t0
        first, last = int((start - t0) // w), int((end - t0) // w)
        if first == last:
            work[first] = work.get(first, 0.0) + 1.0
        else:
            duration = max(end - start, 1e-12)
            for k in range(first, last + 1):
                overlap = min(end, t0 + (k + 1) * w) - max(start, t0 + k * w)
                work[k] = work.get(k, 0.0) + max(0.0, overlap) / duration
        self.requests[slot] += 1
        self._known_until[slot] = end

    def complete(self) -> List[float]:
        """Throughput (requests/s) of every window that is over and whose work is all known, in order."""
        done = int((min(self._known_until) - self.t0) // self.window_s)
        return [sum(work.get(k, 0.0) for work in self._work) / self.window_s for k in range(done)]


def measure_throughput(call: Callable[[], Any], concurrency: int, deadline: float, window_s: float,
                       precision: float, confidence: float) -> Dict[str, Any]:
    """Requests per second with `concurrency` threads sharing the one loaded session, in windows: the first
    (ramp-up) dropped, then until the mean of at least 3 windows is within `precision` at `confidence`, or
    the deadline."""
    stop = threading.Event()
    errors: List[BaseException] = []
    barrier = threading.Barrier(concurrency + 1)
    holder: List[_Windows] = []

    def worker(slot: int) -> None:
        barrier.wait()
        windows = holder[0]
        try:
            while not stop.is_set():
                start = time.perf_counter()
                call()
                windows.add(slot, start, time.perf_counter())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the requesting thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    begin = time.perf_counter()
    holder.append(_Windows(begin, window_s, concurrency))
    barrier.wait()
    values: List[float] = []
    level_precision: Optional[float] = None
    reached = False
    while not stop.is_set():
        time.sleep(min(window_s / 2.0, max(0.0, deadline - time.perf_counter())))
        values = holder[0].complete()[1:]
        level_precision = mean_precision(values, confidence)
        reached = (len(values) >= MIN_THROUGHPUT_WINDOWS and level_precision is not None
                   and level_precision <= precision)
        if reached or time.perf_counter() >= deadline:
            break
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - begin
    if errors:
        raise errors[0]
    requests = sum(holder[0].requests)
    # Too short a level for one window after its ramp-up: whole-level throughput, precision unknown.
    throughput = sum(values) / len(values) if values else (requests / wall if wall > 0 else 0.0)
    return {"concurrency": concurrency, "requests": requests, "wall_s": wall, "windows": len(values),
            "throughput_per_s": throughput, "precision": level_precision, "reached": reached,
            "stopped_by": "precision" if reached else "budget"}


def op_bench(args: Dict[str, Any]) -> Dict[str, Any]:
    """The model timed within `time_budget_s`: warm-up, latency to `precision` at `confidence` (at least
    `min_samples`), then throughput at each `concurrency` level (default [1, cores]); and the other CPU
    load seen meanwhile, peak RSS.

    The host holds the machine-wide timing lock exclusively around this request; nothing here is written
    to disk while timing.
    """
    call = payload_call(args["inputs"])
    budget = max(0.01, float(args.get("time_budget_s", 10.0)))
    precision = float(args.get("precision", 0.02))
    confidence = float(args.get("confidence", 0.95))
    min_samples = max(1, int(args.get("min_samples", 50)))
    asked = args.get("concurrency")  # None: the default levels; []: no throughput at all
    levels = sorted({1, cores()}) if asked is None else [max(1, int(c)) for c in asked]
    window_s = max(MIN_WINDOW_S, budget / WINDOWS_PER_BUDGET)

    meter = CpuMeter()
    begin = time.perf_counter()
    deadline = begin + budget
    warm = warm_up(call, begin + WARMUP_SHARE * budget, window_s, precision)

    def share(weight: float, weights_left: float) -> float:
        return time.perf_counter() + max(0.0, deadline - time.perf_counter()) * weight / weights_left

    concurrent = [level for level in levels if level > 1]  # concurrency 1 comes from the latency phase
    # A micro-model reaches p50/p95 precision within one window; concurrency 1's throughput still needs a few.
    latency = measure_latency(call, share(LATENCY_WEIGHT, LATENCY_WEIGHT + len(concurrent)), window_s, precision,
                              confidence, min_samples, MIN_THROUGHPUT_WINDOWS if 1 in levels else 1)
    throughput = [sequential_throughput(latency, precision, confidence)] if 1 in levels else []
    for i, level in enumerate(concurrent):
        # A window must hold a few requests' worth of time, or a window is mostly one request's noise.
        level_window = max(window_s, 3.0 * latency["p50_latency_ms"] / 1000.0)
        throughput.append(measure_throughput(call, level, share(1.0, float(len(concurrent) - i)), level_window,
                                             precision, confidence))
    throughput.sort(key=lambda level: levels.index(level["concurrency"]))  # in the order asked
    del latency["window_rates"]  # per-window figures stay in the probe: the reply carries the summary
    result = {"latency": latency, "warmup": warm, "throughput": throughput, "cores": cores(),
              "time_s": time.perf_counter() - begin, "peak_rss_mb": _peak_rss_mb()}
    result.update(meter.stop())
    return result
