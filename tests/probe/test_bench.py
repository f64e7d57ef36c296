"""The probe's `bench` op on the demo's ONNX model through a real probe: it stops once p50 and p95 are precise,
stops by budget when they cannot be, measures throughput at 1 and the probe's cores by default, and says what
else used the CPUs."""
from __future__ import annotations

import os
import sys

import pytest

from modelcompat.probe.launcher import ProbeSession

BACKEND = {"runtime": "onnxruntime", "provider": "CPUExecutionProvider", "graph_optimization": "all",
           "precision": "fp32"}


@pytest.fixture(scope="module")
def probe(demo_package, tmp_path_factory: pytest.TempPathFactory):
    """A host probe holding the demo's ONNX model."""
    with ProbeSession(sys.executable, "host/cpu/bench", tmp_path_factory.mktemp("bench"), timeout_s=300) as s:
        s.request("load", artifact=str(demo_package.resolve(demo_package.artifact("onnx").path)), format="onnx",
                  backend=BACKEND)
        yield s, str(demo_package.resolve(demo_package.manifest.payload))


def test_latency_stops_once_p50_and_p95_are_precise(probe) -> None:
    """A µs model reaches ±5 % long before a 20 s budget: the phase ends on the precision, not the clock."""
    session, payload = probe
    reply = session.request("bench", inputs=payload, time_budget_s=20, precision=0.05, min_samples=200,
                            concurrency=[1])
    latency = reply["latency"]
    assert latency["reached"] is True, latency
    assert latency["p50_precision"] <= 0.05 and latency["p95_precision"] <= 0.05
    assert latency["samples"] >= 200  # the minimum holds even when precision came sooner
    assert latency["stopped_by"] == "precision"  # not the ~10 s share of the budget the phase had
    assert reply["warmup"]["runs"] >= 5


def test_a_budget_too_small_stops_by_budget_and_says_so(probe) -> None:
    session, payload = probe
    reply = session.request("bench", inputs=payload, time_budget_s=0.05, min_samples=10**7, concurrency=[1])
    latency = reply["latency"]
    assert latency["reached"] is False and latency["stopped_by"] == "budget" and 0 < latency["samples"] < 10**7
    (level,) = reply["throughput"]
    assert level["concurrency"] == 1 and level["throughput_per_s"] > 0


def test_throughput_levels_default_to_one_and_the_probes_cores(probe) -> None:
    session, payload = probe
    reply = session.request("bench", inputs=payload, time_budget_s=0.3)
    cores = len(os.sched_getaffinity(0))  # the probe inherits this process's affinity
    assert reply["cores"] == cores
    assert [level["concurrency"] for level in reply["throughput"]] == sorted({1, cores})
    for level in reply["throughput"]:
        assert level["throughput_per_s"] > 0 and level["requests"] > 0 and isinstance(level["reached"], bool)
    # concurrency 1 is the latency phase's own requests, not a second timing of the same thing
    sequential = reply["throughput"][0]
    assert sequential["from"] == "latency" and sequential["requests"] == reply["latency"]["samples"]
    # what else used the CPUs meanwhile (Linux: /proc/stat), and the probe's own share
    assert reply["other_cpu_pct"] is not None and 0 <= reply["other_cpu_pct"] <= 100
    assert reply["own_cpu_s"] > 0 and reply["peak_rss_mb"] > 10


def test_an_explicit_concurrency_list_is_measured_as_given(probe) -> None:
    session, payload = probe
    reply = session.request("bench", inputs=payload, time_budget_s=0.3, concurrency=[3, 1])
    assert [level["concurrency"] for level in reply["throughput"]] == [3, 1]


def test_an_empty_concurrency_list_measures_no_throughput(probe) -> None:
    session, payload = probe
    reply = session.request("bench", inputs=payload, time_budget_s=0.1, concurrency=[])
    assert reply["throughput"] == [] and reply["latency"]["samples"] > 0
