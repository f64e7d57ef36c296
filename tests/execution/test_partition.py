"""Partitioned timing: shares of the cores per worker, their locks, and the settings that choose it."""
from __future__ import annotations

import pytest

from modelcompat import settings
from modelcompat.errors import InputError
from modelcompat.execution import partition
from modelcompat.files.timing_lock import TimingLockTimeout, exclusive_timing


def test_shares_split_the_cores_contiguously_and_wrap_when_workers_outnumber_them() -> None:
    cores = [0, 1, 2, 3, 4]
    shares = [partition.share(cores, i, 2) for i in range(2)]
    assert shares == [(0, 1, 2), (3, 4)]
    assert [partition.share(cores, i, 5) for i in range(5)] == [(0,), (1,), (2,), (3,), (4,)]
    assert [partition.share([0, 1], i, 3) for i in range(3)] == [(0,), (1,), (0,)]
    assert partition.share(cores, 0, 1) == tuple(cores)


def test_a_workers_cores_are_parsed_and_a_bad_list_names_the_variable_and_the_fix() -> None:
    assert partition.parse_cores("0-2,6") == (0, 1, 2, 6)
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(InputError) as info:
            partition.parse_cores(bad)
        assert settings.WORKER_CORES_ENV in str(info.value) and "0-3" in str(info.value)


def test_the_timing_mode_is_partitioned_unless_set_and_a_bad_one_is_refused(monkeypatch) -> None:
    monkeypatch.delenv(settings.TIMING_ENV, raising=False)
    monkeypatch.delenv(settings.WORKER_CORES_ENV, raising=False)
    assert settings.timing_mode() == "partitioned"
    assert partition.worker_cores() is None  # outside a worker: the whole machine
    monkeypatch.setenv(settings.TIMING_ENV, "exclusive")
    monkeypatch.setenv(settings.WORKER_CORES_ENV, "0")
    assert settings.timing_mode() == "exclusive" and partition.worker_cores() is None  # named cores ignored
    monkeypatch.setenv(settings.TIMING_ENV, "sideways")
    with pytest.raises(InputError, match="(?s)MODELCOMPAT_TIMING.*exclusive, partitioned"):
        settings.timing_mode()


def test_outside_a_worker_partitioned_timing_has_the_whole_machine_unless_cores_are_named(monkeypatch) -> None:
    monkeypatch.setenv(settings.TIMING_ENV, "partitioned")
    monkeypatch.delenv(settings.WORKER_CORES_ENV, raising=False)
    monkeypatch.setenv(settings.PARTITIONS_ENV, "2")
    assert partition.worker_cores() is None  # inline: not a Dask worker
    monkeypatch.setenv(settings.WORKER_CORES_ENV, "1")
    assert partition.worker_cores() == (1,)


def test_pinning_this_process_pins_its_threads_and_what_they_start() -> None:
    import os
    import subprocess
    import sys

    cpu = max(os.sched_getaffinity(0))
    code = ("import os, sys, threading, subprocess\n"
            "from modelcompat.execution.partition import pin_this_process\n"
            "seen = []\n"
            "started = threading.Event(); go = threading.Event()\n"
            "def older():\n"
            "    started.set(); go.wait(); seen.append(sorted(os.sched_getaffinity(0)))\n"
            "t = threading.Thread(target=older); t.start(); started.wait()\n"
            f"pin_this_process(({cpu},))\n"
            "go.set(); t.join()\n"
            "child = subprocess.run([sys.executable, '-c', 'import os; print(sorted(os.sched_getaffinity(0)))'],"
            " capture_output=True, text=True).stdout.strip()\n"
            "print(seen[0], sorted(os.sched_getaffinity(0)), child)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # A thread started before the pin, the main thread, and a process started after it: all on the share.
    assert out.stdout.split() == [f"[{cpu}]"] * 3


def test_each_share_has_its_own_timing_lock(tmp_path) -> None:
    """Two timed checks on different shares hold their locks at once; on the same share the second waits."""
    base = tmp_path / "timing.lock"
    assert partition.timing_lock(base, None) == base
    first, second = partition.timing_lock(base, (0,)), partition.timing_lock(base, (1,))
    assert first != second and first.parent == base.parent
    with exclusive_timing(first, "cell A latency", timeout_s=5):
        with exclusive_timing(second, "cell B latency", timeout_s=5) as window:
            assert window.others_at_start == []
        with pytest.raises(TimingLockTimeout, match="cell A latency"):
            with exclusive_timing(first, "cell C latency", timeout_s=0.5):
                pass


def test_a_partitioned_run_pins_each_workers_probes_to_its_share_and_keys_its_timed_checks_apart(
        demo_package, tmp_path) -> None:
    """A real run on a local cluster of two workers: each cell's latency was measured by a probe pinned to its
    worker's share of the cores, with one intra-op thread per core of it, under its share's lock."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from modelcompat.store import Store

    matrix = yaml.safe_load((settings.matrices_dir() / "smoke.yaml").read_text())
    matrix["params"] = {"latency": {"time_budget_s": 1.0, "concurrency": [1]}}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(matrix))
    # No MODELCOMPAT_TIMING: partitioned is the default.
    env = {**os.environ, "MODELCOMPAT_WORKERS": "2", "MODELCOMPAT_HOME": str(tmp_path / "home")}
    for var in ("PREFECT_API_URL", "MODELCOMPAT_DASK_ADDRESS", settings.WORKER_CORES_ENV, settings.TIMING_ENV):
        env.pop(var, None)
    done = subprocess.run([sys.executable, "-m", "modelcompat.cli", "run", "--model", str(demo_package.root),
                           "--matrix", str(tmp_path / "m.yaml"), "--validators", "latency", "--store",
                           str(tmp_path / "store"), "--json", str(tmp_path / "s.json")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    run_id = json.loads((tmp_path / "s.json").read_text())["run_id"]
    reports = {r.cell: r for r in Store(str(tmp_path / "store")).load_reports(run_id)}
    assert set(reports) == {"host-ort/cpu/ort-cpu", "host-torch/cpu/torch-eager"}
    shares = [partition.share(partition.available_cores(), i, 2) for i in range(2)]
    for report in reports.values():
        assert report.status.value in ("pass", "warn"), report.findings
        # The probe saw exactly one share's CPUs as its own, and ran that many intra-op threads.
        assert int(report.metrics["cores"]) in {len(s) for s in shares}
        assert report.metrics["intra_op_threads"] == report.metrics["cores"]
        assert report.cache_inputs["timing"] == "partitioned"  # never reused for an exclusive run, or back
    # The two cells ran on the cluster's two workers (two processes), not one after another in one.
    assert len({r.evidence.worker for r in reports.values()}) == 2


def test_finding_no_worker_imports_no_dask() -> None:
    """A one-cell run in the CLI's own process asks for its cores: in partitioned timing (the default) that
    answer must not import Dask (the CLI imports neither Dask nor Prefect's engine for one cell)."""
    import os
    import subprocess
    import sys

    code = ("import sys; from modelcompat.execution import partition; "
            "assert partition.worker_cores() is None; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    env = {k: v for k, v in os.environ.items() if k not in (settings.TIMING_ENV, settings.WORKER_CORES_ENV)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
