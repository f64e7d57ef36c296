"""`bench`: timed runs of the loaded model on the payload (latencies, throughput per concurrency, peak RSS)."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from .inference import payload_call


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _throughput(call: Callable[[], List[Any]], concurrency: int, duration_s: float) -> Dict[str, Any]:
    """Requests per second with `concurrency` threads sharing the one loaded session for `duration_s`."""
    counts = [0] * concurrency
    errors: List[BaseException] = []
    barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(slot: int) -> None:
        barrier.wait()
        try:
            while time.perf_counter() < deadline[0]:
                call()
                counts[slot] += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised in the requesting thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline[0] = start + duration_s
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    total = sum(counts)
    return {"concurrency": concurrency, "requests": total, "wall_s": wall,
            "throughput_per_s": total / wall if wall > 0 else 0.0}


def op_bench(args: Dict[str, Any]) -> Dict[str, Any]:
    """Timed runs on the payload: warm-up, sequential latencies, throughput per concurrency level, peak RSS.

    The host holds the machine-wide timing lock around this request; nothing here is written to disk
    while timing.
    """
    call = payload_call(args["inputs"])
    warmup = max(0, int(args.get("warmup", 20)))
    iterations = max(1, int(args.get("iterations", 200)))
    min_time_s = max(0.0, float(args.get("min_time_s", 0.0)))
    max_iterations = max(iterations, int(args.get("max_iterations", 100000)))
    for _ in range(warmup):
        call()
    times: List[float] = []
    begin = time.perf_counter()
    while len(times) < iterations or (time.perf_counter() - begin < min_time_s and len(times) < max_iterations):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    duration_s = max(0.01, float(args.get("throughput_time_s", 0.5)))
    throughput = [_throughput(call, max(1, int(level)), duration_s) for level in (args.get("concurrency") or [])]
    return {"run_times_ms": times, "throughput": throughput, "peak_rss_mb": _peak_rss_mb()}
