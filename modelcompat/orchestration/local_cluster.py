"""Local Dask clusters: their configuration, the forkserver their workers are forked from, and a start in the
background (`ClusterStart`), so a run's cluster comes up while Prefect imports and its server boots.

Imports neither Prefect nor the flow: the CLI starts a cluster here before either is loaded.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from modelcompat.orchestration.resources import detect_local_resources

log = logging.getLogger(__name__)

LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    # Workers are forked from one forkserver that has imported distributed and the validators' slow
    # imports once (`Validator.preload`), instead of each spawned worker importing them again: a run
    # pays great_expectations' ~3 s import once, not once per worker, and workers exit in ms.
    "distributed.worker.multiprocessing-method": "forkserver",
    # Dask's nanny caps OMP/MKL/OpenBLAS at 1 thread by default (`pre-spawn-environ`, set in the nanny's own
    # process too) so that task threads do not oversubscribe cores. Our workers run one cell at a time and
    # the model runs in the cell's probe, which inherits the worker's environment: capped, torch ran
    # single-threaded (ResNet-18: 103 ms a batch instead of 36 ms), unlike any server. Its allocator setting
    # goes too: MALLOC_TRIM_THRESHOLD_ (which also freezes glibc's dynamic mmap threshold) made torch return
    # and re-fault its activation buffers on every forward pass (+60 % page faults on a conv stack, torch
    # ResNet-18 59 ms a batch in a run vs 38 ms in a bare loop). Workers and probes run as a server would.
    "distributed.nanny.pre-spawn-environ": {},
    # While a timed check runs, every process of the run should sleep. Dask's defaults wake each worker every
    # 10 ms to sample its stack (the dashboard's profiler, which no one reads here) and every process every
    # 20 ms to check its event loop's health; both are slowed down, not the memory monitor (worker limits).
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}



def start_local_cluster(workers: int, preload: Sequence[str] = (), env: dict[str, str] | None = None) -> Any:
    """A LocalCluster of `workers` single-threaded process workers, configured as LOCAL_CLUSTER_CONFIG says;
    `env` adds to the environment its workers get (this process's, as it is now)."""
    import dask
    from distributed import LocalCluster

    resources = detect_local_resources()
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        _start_forkserver(preload)
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # validators measure time and memory: one check per process
            processes=True,
            dashboard_address=None,
            # Every local worker sees the host's GPUs: they share them.
            resources=resources or None,
            # Forked workers start with the forkserver's environment, frozen when it started: hand
            # them this process's current one, as a spawned worker would inherit it.
            env={**os.environ, **(env or {}), **_partition_env(workers)},
        )


def _partition_env(workers: int) -> dict[str, str]:
    """In partitioned timing, each worker pins its probes to its share of the cores: tell it how many shares."""
    from modelcompat import settings

    return {settings.PARTITIONS_ENV: str(workers)} if settings.timing_mode() == "partitioned" else {}


# What the running forkserver preloaded (None: this process has not started one).
_forkserver_preload: frozenset[str] | None = None
_forkserver_lock = threading.Lock()


def _start_forkserver(preload: Sequence[str]) -> None:
    """Make sure this process's multiprocessing forkserver runs and has preloaded `preload`.

    It is one per process and outlives a run: a long-lived `modelcompat serve`, the benchmarks or a
    test session pay the preload once. When a later run needs a preload the running one lacks, it is
    restarted with both (workers already forked from it are independent processes and keep running).
    """
    global _forkserver_preload
    import multiprocessing
    import multiprocessing.forkserver as forkserver

    from modelcompat.settings import WORKER_PRELOAD_ENV as PRELOAD_ENV

    wanted = frozenset(preload)
    with _forkserver_lock:
        if _forkserver_preload is not None and wanted <= _forkserver_preload:
            forkserver.ensure_running()  # restarts it, as it was, if it died
            return
        if _forkserver_preload is not None:
            wanted |= _forkserver_preload
            try:
                forkserver._forkserver._stop()  # private, stable since 3.7; the next line starts a new one
            except Exception as exc:  # the old preload then stays: workers import the rest themselves
                log.warning("could not restart the forkserver to preload %s: %s", sorted(wanted), exc)
                return
        ctx = multiprocessing.get_context("forkserver")
        # distributed and the harness: what every worker imports anyway. The forkserver reads its
        # preload list, and our variable, from this process when it starts.
        ctx.set_forkserver_preload(["distributed", "modelcompat.execution.harness", "modelcompat.orchestration.worker_preload"])
        previous = os.environ.get(PRELOAD_ENV)
        os.environ[PRELOAD_ENV] = ",".join(sorted(wanted))
        try:
            forkserver.ensure_running()
        finally:
            if previous is None:
                os.environ.pop(PRELOAD_ENV, None)
            else:
                os.environ[PRELOAD_ENV] = previous
        _forkserver_preload = wanted


class ClusterStart:
    """A local cluster starting in a background thread; `take()` waits for it and hands it over once.

    `env`: variables its workers get on top of this process's environment at start (e.g. the Prefect API URL
    of a server that is still booting). One nobody took is closed by `close_unused()`.
    """

    def __init__(self, workers: int, preload: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.workers, self.preload = workers, tuple(preload)
        self._future: Future[Any] = Future()
        self._taken = False
        self._thread = threading.Thread(target=self._start, args=(dict(env or {}),), name="modelcompat-cluster-start",
                                        daemon=True)
        self._thread.start()

    def _start(self, env: dict[str, str]) -> None:
        try:
            self._future.set_result(start_local_cluster(self.workers, self.preload, env))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the cluster
            self._future.set_exception(exc)

    def take(self) -> Any:
        """The started cluster (waits for it; raises what starting it raised); the taker closes it."""
        self._taken = True
        return self._future.result()

    def close_unused(self) -> None:
        """Close the cluster if nobody took it (a run that failed before its cells were submitted)."""
        if self._taken:
            return
        self._taken = True
        try:
            self._future.result().close()
        except Exception as exc:  # a cluster that never started has nothing to close
            log.debug("unused cluster: %s", exc)
