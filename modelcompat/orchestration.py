"""Prefect server and Dask cluster plumbing: one API URL for the flow and its workers, resource routing.

Without `PREFECT_API_URL` every Dask worker process would start a temporary server of its own on one
SQLite file (≈150 ms/task and "database is locked", DESIGN.md): so we start exactly one server, put its
URL in the environment *before* the workers are spawned, and stop it when the run ends.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelcompat.cells import Cell

log = logging.getLogger(__name__)


@contextlib.contextmanager
def prefect_api(home: str | None = None) -> Iterator[str]:
    """Yield a Prefect API URL: `PREFECT_API_URL` when set, else a local server started for this block."""
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    if home and "PREFECT_HOME" not in os.environ:
        # Prefect creates only the last path component itself: make the whole path first.
        Path(home).mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=120)
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by Dask worker processes spawned later
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_prefect_logs()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _drain_prefect_logs() -> None:
    """Ship buffered run logs before the server goes away (else: 'Error logging to API')."""
    try:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
    except Exception as exc:  # logging must never fail a finished run
        log.debug("could not drain Prefect logs: %s", exc)


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


def make_task_runner(address: str | None, workers: int) -> Any:
    """A DaskTaskRunner on an existing scheduler, or on a local cluster of process workers."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    resources = detect_local_resources()
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers,
        "threads_per_worker": 1,  # validators measure time and memory: one check per process at a time
        "processes": True,
        "dashboard_address": None,
        # Every local worker sees the host's GPUs: they share them (one check per worker at a time).
        "resources": resources or None,
    })


def worker_resources(client: Any) -> dict[str, dict[str, float]]:
    """Resources each worker of the cluster offers, by worker address."""
    info = client.scheduler_info()
    return {addr: dict(w.get("resources") or {}) for addr, w in info.get("workers", {}).items()}


def unavailable_reason(cell: Cell, offered: dict[str, dict[str, float]]) -> str | None:
    """Why no worker can run `cell` (its hardware's resources are offered by none), or None."""
    need = cell.hardware.resources
    if not need:
        return None
    if any(all(res.get(k, 0) >= v for k, v in need.items()) for res in offered.values()):
        return None
    wanted = ", ".join(f"{k}={v:g}" for k, v in need.items())
    return (f"no {cell.hardware.kind.upper()} hardware: none of the {len(offered)} Dask worker(s) offers "
            f"resource {wanted} (start workers on such a machine with `dask worker ... --resources {wanted}`)")
