"""The probe's CPU meter: another process's CPU time is counted as other load, the probe's own is not."""
from __future__ import annotations

import subprocess
import sys
import time

from modelcompat.probe.agent.modelcompat_probe_agent import cpu_load
from modelcompat.probe.agent.modelcompat_probe_agent.cpu_load import CpuMeter

_BURN = ("import resource, time\n"
         "end = time.process_time() + 0.5\n"
         "while time.process_time() < end: pass\n"
         "r = resource.getrusage(resource.RUSAGE_SELF)\n"
         "print(r.ru_utime + r.ru_stime)\n")


def test_another_process_counts_as_other_load_and_our_own_work_as_ours() -> None:
    meter = CpuMeter()
    child = subprocess.run([sys.executable, "-c", _BURN], capture_output=True, text=True, check=True, timeout=60)
    end = time.process_time() + 0.3
    while time.process_time() < end:  # our own work: the probe's, never "other"
        pass
    out = meter.stop()
    child_cpu_s = float(child.stdout.strip())
    tick = 0.02  # /proc/stat counts in 10 ms ticks: allow one each side
    assert out["own_cpu_s"] >= 0.3 - tick
    assert out["other_cpu_s"] >= child_cpu_s - tick, (out, child_cpu_s)  # what the child itself says it used
    assert 0 <= out["other_cpu_pct"] <= 100 and out["other_cpu_cores"] >= 0


def test_without_proc_stat_the_other_load_is_unknown(monkeypatch) -> None:
    monkeypatch.setattr(cpu_load, "_proc_stat", lambda cpus=None: None)
    out = CpuMeter().stop()
    assert out["other_cpu_pct"] is None and out["other_cpu_s"] is None
    assert out["own_cpu_s"] is not None


_STAT = """cpu  300 0 100 600 0 0 0 0 0 0
cpu0 250 0 50 100 0 0 0 0 0 0
cpu1 50 0 50 500 0 0 0 0 0 0
intr 12345
"""


def test_a_pinned_probe_counts_only_its_own_cpus() -> None:
    """Partitioned timing pins a probe to its share of the cores: the other shares' work is another worker's,
    not noise in this measurement."""
    assert cpu_load.parse_stat(_STAT, 100.0) == (4.0, 10.0)  # the machine: 400 busy ticks of 1000
    assert cpu_load.parse_stat(_STAT, 100.0, {0}) == (3.0, 4.0)
    assert cpu_load.parse_stat(_STAT, 100.0, {1}) == (1.0, 6.0)
    assert cpu_load.parse_stat(_STAT, 100.0, {0, 1}) == (4.0, 10.0)
    assert cpu_load.parse_stat(_STAT, 100.0, {2}) is None  # a CPU the file does not list: unknown, not zero


def test_work_on_the_probes_own_cpu_is_seen_when_pinned() -> None:
    import os

    cpu = max(os.sched_getaffinity(0))
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})  # this thread (the meter's caller), as a pinned probe's main thread
    try:
        meter = CpuMeter()
        assert meter._cpus == ({cpu} if (os.cpu_count() or 1) > 1 else None)
        child = subprocess.run([sys.executable, "-c", _BURN], capture_output=True, text=True, check=True,
                               timeout=60, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        out = meter.stop()
    finally:
        os.sched_setaffinity(0, previous)
    assert out["other_cpu_s"] >= float(child.stdout.strip()) - 0.02, out
