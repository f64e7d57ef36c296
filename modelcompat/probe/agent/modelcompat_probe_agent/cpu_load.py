"""What else used the probe's CPUs while it measured: /proc/stat busy time minus the probe's own CPU time
(getrusage covers every thread of the probe, the runtime's pools included). A probe pinned to some of the
machine's CPUs (partitioned timing) counts those CPUs only: the others are another worker's. Stdlib only."""
from __future__ import annotations

import os
import time
from typing import Dict, Optional, Set, Tuple


def _own_cpus() -> Optional[Set[int]]:
    """The CPUs this process is pinned to, or None when it may use all of them (or cannot tell)."""
    try:
        mine = os.sched_getaffinity(0)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    return set(mine) if len(mine) < (os.cpu_count() or len(mine)) else None


def _proc_stat(cpus: Optional[Set[int]] = None) -> Optional[Tuple[float, float]]:
    """(busy, total) CPU seconds since boot of the whole machine, or of `cpus` only; None where /proc is absent."""
    try:
        with open("/proc/stat") as f:
            text = f.read()
        tick = float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return None
    return parse_stat(text, tick, cpus)


def parse_stat(text: str, tick: float, cpus: Optional[Set[int]] = None) -> Optional[Tuple[float, float]]:
    """(busy, total) CPU seconds from /proc/stat's text: its `cpu` line, or the sum of the `cpuN` lines of
    `cpus`; None if one is missing."""
    lines = [line.split() for line in text.splitlines() if line.startswith("cpu")]
    wanted = ["cpu"] if cpus is None else ["cpu%d" % c for c in sorted(cpus)]
    rows = [fields for fields in lines if fields and fields[0] in wanted]
    if len(rows) != len(wanted):
        return None
    busy = total = 0.0
    for fields in rows:
        # user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
        values = [float(v) for v in fields[1:9]]
        values += [0.0] * (8 - len(values))
        idle = values[3] + values[4]
        busy, total = busy + sum(values) - idle, total + sum(values)
    return busy / tick, total / tick


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
        self._cpus = _own_cpus()
        self._stat = _proc_stat(self._cpus)
        self._own = _own_cpu_s()

    def stop(self) -> Dict[str, Optional[float]]:
        """`other_cpu_pct`: other processes' busy time as a share of the CPU time of the probe's CPUs (all
        the machine's unless pinned; 100 = every such core busy with other work); `other_cpu_s` / `other_cpu_cores`: the same in CPU seconds and in cores;
        `own_cpu_s` / `own_cpu_cores`: the probe's. None where /proc/stat or getrusage is not available."""
        wall = time.perf_counter() - self._wall
        stat, own = _proc_stat(self._cpus), _own_cpu_s()
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
