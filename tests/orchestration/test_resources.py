"""What workers offer, asked without Prefect and without a cluster (a real scheduler's workers: tests/flows/test_dask_cluster.py)."""
from __future__ import annotations

import shutil

from modelcompat.orchestration import dask_runner
from modelcompat.orchestration.resources import detect_local_resources, offered_resources, worker_resources


def test_a_local_run_is_offered_this_hosts_resources() -> None:
    local = detect_local_resources()
    assert offered_resources(None) == {"local": local}
    if shutil.which("nvidia-smi") is None:
        assert local == {}  # no NVIDIA tool here: no GPU claimed


def test_the_dask_runner_still_exports_them() -> None:
    assert dask_runner.detect_local_resources is detect_local_resources
    assert dask_runner.worker_resources is worker_resources
