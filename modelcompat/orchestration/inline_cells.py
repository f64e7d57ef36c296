"""Cells run in a thread of this process instead of on Dask: a local run of one cell (no scheduler address).

Starting a LocalCluster (importing distributed, spawning its scheduler and workers) cost ~2.5 s of a one-cell
run, more than the cell itself; in a thread the cell starts at once, and can start before Prefect is even
imported (`modelcompat run` hands it to the flow). The probe is still a process of its own: no inference
runs in this process.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

# Local runs of at most this many cells run them here; more go to a local Dask cluster (its workers run
# cells side by side, and a cell that kills its worker is re-run elsewhere).
INLINE_MAX_CELLS = 1


def runs_inline(address: str | None, n_cells: int, max_cells: int = INLINE_MAX_CELLS) -> bool:
    """Whether a run's `n_cells` cells run in this process: local (no scheduler address) and at most `max_cells`."""
    return not address and 0 < n_cells <= max_cells


def start_inline(fn: Callable[[Any], Any], jobs: Sequence[Any]) -> dict[str, Future[Any]]:
    """Start `fn(job)` for every job, each in a daemon thread of this process; futures by cell id.

    Daemon threads: a run that fails around its cell (e.g. the Prefect API is unreachable) exits without
    waiting for the cell, whose probe is killed as the process exits (ProbeSession's finalizer).
    """
    futures: dict[str, Future[Any]] = {}
    for job in jobs:
        future: Future[Any] = Future()
        thread = threading.Thread(target=_run, args=(future, fn, job), name=f"cell {job.cell.id}", daemon=True)
        futures[job.cell.id] = future
        thread.start()
    return futures


def _run(future: Future[Any], fn: Callable[[Any], Any], job: Any) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn(job))
    except BaseException as exc:  # noqa: BLE001  handed to whoever waits on the cell, as Dask would
        future.set_exception(exc)
