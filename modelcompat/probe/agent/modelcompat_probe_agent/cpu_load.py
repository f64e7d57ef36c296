"""What else used the machine's CPUs while the probe measured: /proc/stat busy time minus the probe's own
CPU time (getrusage covers every thread of the probe, the runtime's pools included). Stdlib only."""
from __future__ import annotations

import os
import time
from typing import Dict, Optional, Tuple


def _proc_stat() -> Optional[Tuple[float, float]]:
    """(busy, total) CPU seconds of the whole machine since boot, or None where /proc is absent."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        tick = float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
    values = [float(v) for v in fields[1:9]]
    values += [0.0] * (8 - len(values))
    idle = values[3] + values[4]
    total = sum(values)
    return (total - idle) / tick, total / tick


def _own_cpu_s() -> Optional[float]:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Started at construction; `stop()` says how much CPU other processes used in between."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._stat = _proc_stat()
        self._own = _own_cpu_s()

    def stop(self) -> Dict[str, Optional[float]]:
        """`other_cpu_pct`: other processes' busy time as a share of all the machine's CPU time (100 = every
        core busy with other work); `other_cpu_s` / `other_cpu_cores`: the same in CPU seconds and in cores;
        `own_cpu_s` / `own_cpu_cores`: the probe's. None where /proc/stat or getrusage is not available."""
        wall = time.perf_counter() - self._wall
        stat, own = _proc_stat(), _own_cpu_s()
        out: Dict[str, Optional[float]] = dict.fromkeys(
            ("other_cpu_pct", "other_cpu_s", "other_cpu_cores", "own_cpu_s", "own_cpu_cores"))
        if own is not None and self._own is not None and wall > 0:
            out["own_cpu_s"] = own - self._own
            out["own_cpu_cores"] = (own - self._own) / wall
        if stat is None or self._stat is None or own is None or self._own is None or wall <= 0:
            return out
        busy, total = stat[0] - self._stat[0], stat[1] - self._stat[1]
        other = max(0.0, busy - (own - self._own))  # tick rounding can make it slightly negative
        if total > 0:
            out["other_cpu_pct"] = 100.0 * other / total
            out["other_cpu_s"] = other
            out["other_cpu_cores"] = other / wall
        return out
