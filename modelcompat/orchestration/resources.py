"""What the workers of a run offer (Dask resources such as `GPU`), asked without Prefect and without starting a cluster.

Planning needs it (a cell whose hardware no worker has is `skipped`), including a run that then needs neither.
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Any


def detect_local_resources() -> dict[str, float]:
    """Dask worker resources this host really has (`GPU`: NVIDIA devices seen by nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return {}
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return {}
    gpus = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    return {"GPU": float(gpus)} if gpus else {}


def worker_resources(client: Any) -> dict[str, dict[str, float]]:
    """Resources each worker of the cluster offers, by worker address."""
    info = client.scheduler_info()
    return {addr: dict(w.get("resources") or {}) for addr, w in info.get("workers", {}).items()}


def offered_resources(address: str | None) -> dict[str, dict[str, float]]:
    """The resources each worker offers: the scheduler's workers at `address`, else this host (local cells run
    here, on a local cluster or in this process), so deciding routing never starts a cluster."""
    if not address:
        return {"local": detect_local_resources()}
    from distributed import Client

    with Client(address, timeout=30) as client:
        return worker_resources(client)
