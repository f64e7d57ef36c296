"""Cells on Dask: the flow's task runner (DaskCellRunner); local clusters come from `local_cluster`.

Dask workers run plain functions (DaskCellRunner), so they do not call the Prefect API themselves; the URL
they inherit (`prefect_api`) keeps it that way if a validator ever logs through Prefect. A local run of a
single cell skips Dask: the cell runs in a thread of this process (its probe is still its own process).
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from modelcompat.orchestration.inline_cells import INLINE_MAX_CELLS, runs_inline, start_inline
from modelcompat.orchestration.local_cluster import ClusterStart, start_local_cluster
from modelcompat.orchestration.resources import detect_local_resources, worker_resources

__all__ = ["CELL_TASK_GROUP", "DaskCellRunner", "detect_local_resources", "make_task_runner", "start_local_cluster",
           "worker_resources"]

log = logging.getLogger(__name__)

# Every cell task of a run shares this Dask task group (the first part of its key), so the scheduler
# sees one group larger than the cluster and queues it ("root-ish" tasks) instead of assigning every
# cell to a worker up front; with a worker saturation of 1.0 a worker receives its next cell only when
# it is free. Measured: without it, a cell assigned early to a busy worker waited ~1.6 s for work
# stealing while another worker sat idle (docs/benchmarks.md `parallel_efficiency`).
CELL_TASK_GROUP = "modelcompat-cell"


def make_task_runner(address: str | None, workers: int, prestarted: ClusterStart | None = None) -> Any:
    """The flow's task runner: Prefect tasks in threads of the flow process, each handing its cell to Dask
    (or, for a local run of one cell, to a thread of this process). `prestarted`: the local cluster the
    caller began starting (`ClusterStart`), used instead of starting one."""
    return DaskCellRunner(address=address, workers=workers, prestarted=prestarted)


def _cell_runner_base() -> type:
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner


class DaskCellRunner(_cell_runner_base()):  # type: ignore[misc]
    """Prefect tasks run in threads of the flow process; each submits its cell to a Dask client.

    Why not DaskTaskRunner: a Prefect task *on* Dask costs ≈70–180 ms of orchestration here (DESIGN.md,
    docs/benchmarks.md), paid per cell; a Prefect task in a thread costs a few ms and a plain
    `Client.submit` ≈2 ms. The cell still shows as a task run named after it in the Prefect UI, and the
    heavy work (env provisioning, probe) still runs on a Dask worker, routed by resources (GPU=1).
    The cluster (local) or client (remote) is created on first use only: a run with nothing to do
    starts none, and a local run of at most `inline_max_cells` cells (no address) runs them in threads
    of this process instead (`ran_inline` records it); 0 sends every cell to Dask.
    """

    def __init__(self, address: str | None = None, workers: int | None = None, max_workers: int = 64,
                 inline_max_cells: int = INLINE_MAX_CELLS, prestarted: ClusterStart | None = None) -> None:
        super().__init__(max_workers=max_workers)  # threads only wait on Dask futures: cheap to have many
        self.address = address
        self.workers = workers or 1
        self.inline_max_cells = inline_max_cells
        self.prestarted = prestarted
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()
        self._futures: dict[str, Any] = {}
        self.preload: tuple[str, ...] = ()  # see Validator.preload; set before the cluster starts
        self.ran_inline: list[str] = []  # cell ids run in this process rather than on Dask

    def duplicate(self) -> "DaskCellRunner":
        return type(self)(address=self.address, workers=self.workers, max_workers=self._max_workers,
                          inline_max_cells=self.inline_max_cells, prestarted=self.prestarted)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from distributed import Client

                if self.address:
                    self._client = Client(self.address, timeout=60)
                else:
                    self._cluster = (self.prestarted.take() if self.prestarted is not None
                                     else start_local_cluster(self.workers, self.preload))
                    self._client = Client(self._cluster)
            return self._client

    @property
    def started(self) -> bool:
        """Whether a client (and so a cluster) exists yet."""
        return self._client is not None

    def offered_resources(self) -> dict[str, dict[str, float]]:
        """What the workers offer. A local cluster (or this process) runs on this host: ask the host, so
        deciding routing never starts a cluster by itself."""
        if not self.address:
            return {"local": detect_local_resources()}
        return worker_resources(self.client)

    def runs_inline(self, n_cells: int) -> bool:
        """Whether `n_cells` cells would run in threads of this process (`inline_cells.runs_inline`), before
        any cluster exists."""
        return not self.started and runs_inline(self.address, n_cells, self.inline_max_cells)

    def submit_cells(self, fn: Any, jobs: list[Any], preload: Sequence[str] = (),
                     started: Mapping[str, Future[Any]] | None = None) -> None:
        """Submit `fn(job)` for every job, each to a worker offering the cell's hardware resources.

        Jobs are given priorities in list order (the first runs first): callers put the longest cells
        first, so no long cell starts last and leaves the other workers idle at the end. Submitting
        from one thread keeps the order Dask sees deterministic; the per-cell Prefect tasks then wait
        on their own future. `preload` (Validator.preload of the checks to run) warms a local
        cluster's workers; it does nothing once the cluster runs, or on a remote one, or inline.
        `started`: cells of these jobs the caller already started in this process (`start_inline`,
        e.g. while Prefect was importing), by cell id; they are waited on, not submitted again.
        """
        started = started or {}
        for job in jobs:
            if job.cell.id in started:
                self._futures[job.cell.id] = started[job.cell.id]
                self.ran_inline.append(job.cell.id)
        jobs = [job for job in jobs if job.cell.id not in started]
        if not jobs:
            return
        if self.runs_inline(len(jobs)):
            self._futures.update(start_inline(fn, jobs))
            self.ran_inline += [job.cell.id for job in jobs]
            return
        if not self.started:
            self.preload = tuple(preload)
        import dask

        cells = []
        for i, job in enumerate(jobs):
            resources = {"resources": dict(job.cell.hardware.resources)} if job.cell.hardware.resources else {}
            with dask.annotate(priority=-i, **resources):
                # A tuple key: one task group for every cell (see CELL_TASK_GROUP), the cell id still
                # readable on the dashboard.
                cells.append(dask.delayed(fn, pure=False)(
                    job, dask_key_name=(CELL_TASK_GROUP, job.cell.id, uuid.uuid4().hex[:8])))
        # One graph update for all cells: submitted one by one, the first ones would reach the
        # scheduler while the group is still small, not look "root-ish", and be assigned up front.
        futures = self.client.compute(cells, optimize_graph=False)
        self._futures.update({job.cell.id: future for job, future in zip(jobs, futures, strict=True)})

    def cell_result(self, cell_id: str) -> Any:
        """Wait for a submitted cell (Dask re-runs it elsewhere if its worker is lost)."""
        future: Future[Any] | Any = self._futures.pop(cell_id)
        return future.result()

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)
        finally:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None
