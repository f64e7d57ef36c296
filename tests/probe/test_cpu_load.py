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
    monkeypatch.setattr(cpu_load, "_proc_stat", lambda: None)
    out = CpuMeter().stop()
    assert out["other_cpu_pct"] is None and out["other_cpu_s"] is None
    assert out["own_cpu_s"] is not None
