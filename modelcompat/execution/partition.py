"""Partitioned timing (`MODELCOMPAT_TIMING=partitioned`): which cores this worker's probes are pinned to, and the
timing lock of that share of the machine.

A local cluster of N workers splits the CPUs this process may use into N contiguous shares, worker i taking
share i; a remote worker names its cores with `MODELCOMPAT_WORKER_CORES`. A cell run outside a worker (inline)
has the whole machine. Each share has its own timing lock (the machine-wide lock's path + `.cores-<ids>`), so a
timed check excludes only the untimed work pinned to its own cores, and two timed checks on different shares
measure side by side.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from modelcompat import settings
from modelcompat.errors import InputError


def available_cores() -> list[int]:
    """The CPUs this process may run on (its affinity mask), in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API here: every CPU
        return list(range(os.cpu_count() or 1))


def share(cores: list[int], index: int, parts: int) -> tuple[int, ...]:
    """Share `index` of `parts` contiguous shares of `cores` (the first shares take one more when uneven);
    more parts than cores: shares wrap around, two workers then share a core."""
    if parts <= 1 or not cores:
        return tuple(cores)
    if parts > len(cores):
        return (cores[index % len(cores)],)
    size, extra = divmod(len(cores), parts)
    start = index * size + min(index, extra)
    return tuple(cores[start:start + size + (1 if index < extra else 0)])


def parse_cores(spec: str) -> tuple[int, ...]:
    """`0-3,6` -> (0, 1, 2, 3, 6); a bad spec is an InputError naming the variable and the fix."""
    cores: set[int] = set()
    try:
        for part in spec.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if low > high:
                    raise ValueError(part)
                cores.update(range(low, high + 1))
            elif part:
                cores.add(int(part))
    except ValueError:
        cores = set()
    if not cores or min(cores) < 0:
        raise InputError(f"{spec!r} is not a list of CPU numbers", field=settings.WORKER_CORES_ENV,
                         fix="write CPU numbers and ranges such as 0-3 or 0,2 (see `nproc` / `lscpu`)")
    return tuple(sorted(cores))


def _worker_index() -> int | None:
    """This Dask worker's index in a local cluster (its name is 0..N-1), or None outside a worker."""
    # A process that has not imported distributed is no Dask worker: a one-cell run in the CLI's own process
    # must not import Dask just to find that out (it starts neither a cluster nor Prefect's engine).
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):  # not in a worker (inline, or the CLI itself)
        return None
    return int(name) if isinstance(name, int) or str(name).isdigit() else None


def worker_cores() -> tuple[int, ...] | None:
    """The cores this worker's probes are pinned to in partitioned timing; None: not partitioned (the probe
    may run anywhere, and timed checks take the machine-wide lock)."""
    if settings.timing_mode() != "partitioned":
        return None
    spec = settings.worker_cores_spec()
    if spec:
        return parse_cores(spec)
    parts, index = settings.partitions(), _worker_index()
    if parts is None or index is None:
        return None  # inline or an unconfigured remote worker: the whole machine, as in exclusive timing
    return share(available_cores(), index, parts)


def pin_this_process(cores: tuple[int, ...]) -> None:
    """Pin every thread of this process (a Dask worker) to `cores`: the host-side work of its checks (hashing,
    conversions, data contracts) stays on its share too, and threads and processes it starts later inherit it."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the calling thread only
        threads = [0]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # a thread that ended meanwhile
            continue


def timing_lock(base: Path, cores: tuple[int, ...] | None) -> Path:
    """The lock a check on `cores` takes: the machine-wide one, or its share's."""
    if not cores:
        return base
    return base.with_name(f"{base.name}.cores-{'-'.join(map(str, cores))}")
