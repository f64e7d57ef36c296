"""The issue-14 benchmark helpers: where a run's time went (from its summary) and the tables they render."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The benchmarks package's modules. The repo root is kept off sys.path for the tests (pyproject), and
    a top-level `import benchmarks` would find this tests/benchmarks folder instead: import it from there."""
    monkeypatch.syspath_prepend(str(REPO))

    def load(name: str) -> ModuleType:
        return importlib.import_module(f"benchmarks.{name}")
    return load


def _report(cell: str, validator: str, seconds: float, worker: str, *, cached: bool = False,
            status: str = "pass") -> dict:
    return {"cell": cell, "validator": validator, "duration_s": seconds, "cached": cached, "status": status,
            "evidence": {"worker": worker}}


def test_busiest_worker_and_overhead_from_the_summary(bench) -> None:
    real_models = bench("real_models")
    timed = {**_report("a", "latency", 4.0, "w1"), "metrics": {"lock_wait_s": 1.5}}
    reports = [timed, _report("a", "integrity", 1.0, "w1"),
               _report("b", "latency", 2.0, "w2"), _report("b", "integrity", 0.5, "w2"),
               _report("c", "integrity", 9.0, "w2", cached=True),  # reused: no time spent in this run
               _report("d", "latency", 0.0, "w2", status="skipped")]
    got = real_models.where_time_went(real_models.Run(wall_s=8.0, returncode=0, summary={"reports": reports, "counts": {}, "verdict": "pass"}))
    assert got["checks_run"] == 4
    assert got["check_sum_s"] == 7.5 and got["latency_sum_s"] == 6.0
    assert got["per_worker_s"] == {"w1": 5.0, "w2": 2.5}
    assert got["busiest_worker_s"] == 5.0 and got["overhead_s"] == 3.0
    assert got["lock_wait_s"] == 1.5


def test_polygraphy_venv_pins_the_hosts_runtime(bench) -> None:
    reqs = bench("polygraphy_env").requirements()
    assert f"onnxruntime=={metadata.version('onnxruntime')}" in reqs
    assert f"numpy=={metadata.version('numpy')}" in reqs
    assert any(r.startswith("polygraphy==") for r in reqs)


def test_a_benchmarks_table_is_rendered_after_its_figures(bench) -> None:
    figure = {"name": "f", "value": 2.0, "unit": "s", "anchor_name": "a", "anchor_value": 1.0, "ratio": 2.0}
    entry = {"title": "T", "status": "ok", "figures": [figure], "command": "c", "date": "d",
             "tables": [{"title": "Model cost", "columns": ["model", "wall (s)", "share"],
                         "rows": [["ResNet-18", 31.25, "12 %"]]}]}
    text = bench("render").render({"machine": {}, "benchmarks": {"run_cost": entry}}, ["run_cost"])
    figures_at, table_at = text.index("| f |"), text.index("Model cost:")
    assert figures_at < table_at
    assert "| model | wall (s) | share |" in text and "| ResNet-18 | 31.2 | 12 % |" in text


def test_a_pinned_bare_loop_runs_on_the_cores_it_is_given(bench, demo_package) -> None:
    """Partitioned timing's anchor: the bare loop is pinned like the validator's probe, and really runs."""
    import os

    cpu = max(os.sched_getaffinity(0))
    loop = bench("real_models").bare_loop(Path(demo_package.root), "onnxruntime",
                                          {"provider": "CPUExecutionProvider"}, cores=(cpu,))
    try:
        got = loop.time(5, 1, threads=1)
        status = Path(f"/proc/{loop._proc.pid}/status").read_text()
        # Before a report gives a sample count: as many runs as fit in the time given, CPU use measured alike.
        timed = loop.time(None, 1, threads=1, seconds=0.3)
    finally:
        loop.close()
    assert len(got["times"]) == 5 and got["threads"] == 1
    assert f"Cpus_allowed_list:\t{cpu}\n" in status
    # Timed by the clock, not a count: the runs fill the 0.3 s (half of it at least, whatever preempts the loop
    # between runs on a busy machine).
    assert sum(timed["times"]) >= 0.3 * 1000 * 0.5 and len(timed["times"]) > 5
    assert 0.0 <= timed["other_cpu_pct"] <= 100.0


def test_bare_windows_busier_than_the_validators_measurement_are_left_out(bench) -> None:
    fidelity = bench("latency_fidelity")
    windows = [{"t0": 0, "other_cpu_pct": 2.0}, {"t0": 1, "other_cpu_pct": 40.0}, {"t0": 2, "other_cpu_pct": None}]
    assert [w["t0"] for w in fidelity._alike(windows, 3.0)] == [0, 2]
    assert [w["t0"] for w in fidelity._alike(windows, 38.0)] == [0, 1, 2]  # a busy validator: any quieter window
    assert fidelity._alike(windows, None) == windows  # the validator could not tell: no condition to match


def test_the_bare_loop_is_compared_over_its_windows_just_before_and_after_the_validators(bench) -> None:
    fidelity = bench("latency_fidelity")

    def window(cell: str, t0: float, t1: float) -> dict:
        return {"cell": cell, "t0": t0, "t1": t1, "times": [1.0]}

    windows = [window("a", 0, 5), window("a", 10, 15), window("b", 16, 19), window("a", 40, 45), window("a", 50, 55)]
    # The validator measured 20-35: a's last window before it (10-15) and first after it (40-45); b's one window.
    assert [(w["t0"], w["t1"]) for w in fidelity._beside(windows, "a", 20, 35)] == [(10, 15), (40, 45)]
    assert [(w["t0"], w["t1"]) for w in fidelity._beside(windows, "b", 20, 35)] == [(16, 19)]
    # At the run's end (nothing after it): the nearest two.
    assert [(w["t0"], w["t1"]) for w in fidelity._beside(windows, "a", 60, 70)] == [(50, 55), (40, 45)]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin a process to fewer of them")
def test_processes_pinned_to_a_share_are_found_with_their_cpus(bench) -> None:
    """How latency_fidelity tells which CPUs the validator's worker had: a real process pinned to one CPU."""
    fidelity = bench("latency_fidelity")
    cpu = min(os.sched_getaffinity(0))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    try:
        found = fidelity._pinned_processes()
        assert found.get(child.pid) == (cpu,)
        assert os.getpid() not in found  # this process may use every CPU
    finally:
        child.kill()
        child.wait()
