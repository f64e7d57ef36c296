"""Flow `nightly-matrix`: every registered model's latest and production versions, on one Dask cluster.

With no Dask address set it starts one local cluster for all its models (workers keep their probe
zygotes and imports from one model to the next) and checks several models at once, so the cluster's
queue never runs dry between two models.
"""
from __future__ import annotations

import contextvars
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from prefect import flow, get_run_logger

from modelcompat import settings
from modelcompat.execution.harness import prewarm_runtimes
from modelcompat.flows.check_version import check_version
from modelcompat.matrix.spec import load_matrix
from modelcompat.model_registry.selection import open_registry
from modelcompat.orchestration.dask_runner import start_local_cluster
from modelcompat.validators.registry import Registry


@flow(name="nightly-matrix", flow_run_name="nightly matrix")
def nightly_matrix(matrix: str | None = None, production_alias: str = "production",
                   concurrent_models: int = 4) -> list[dict[str, Any]]:
    """Every registered model: its latest version and the version holding the production alias.

    Up to `concurrent_models` versions are checked at once (each a check-matrix subflow), so their cells
    share the cluster's queue and no worker idles at the tail of one model while the next waits.
    """
    registry = open_registry()  # $MODELCOMPAT_REGISTRY: a folder, or mlflow+http(s)://…
    todo = []
    for name in registry.models():
        data = registry.model(name)
        versions = {registry.latest(name)}
        if production_alias in data["aliases"]:
            versions.add(data["aliases"][production_alias])
        todo += [(name, version) for version in sorted(versions)]
    with ExitStack() as stack:
        address = settings.dask_address()
        if address is None and len(todo) > 1:
            discovered = Registry.discover().validators.values()
            preload = sorted({module for cls in discovered for module in getattr(cls, "preload", ())})
            address = stack.enter_context(start_local_cluster(settings.workers(), preload)).scheduler_address
            get_run_logger().info("one local Dask cluster (%s) for the %d model versions", address, len(todo))
        matrix = matrix or str(settings.matrices_dir() / "nightly.yaml")
        if address is not None and todo:
            _prewarm(address, matrix)

        def check(name: str, version: str) -> dict[str, Any]:
            return check_version(name, version, matrix=matrix, trigger="schedule", dask_address=address)

        # Subflows in threads: each thread gets a copy of this flow run's context (Prefect's own advice,
        # PrefectHQ/prefect#9296), so the checks show as this nightly's subflow runs.
        with ThreadPoolExecutor(max_workers=max(1, concurrent_models), thread_name_prefix="nightly") as pool:
            futures = [pool.submit(contextvars.copy_context().run, check, name, version) for name, version in todo]
            return [f.result() for f in futures]


def _prewarm(address: str, matrix: str) -> None:
    """Start every worker's probe zygotes for the matrix's runtimes before the first cells arrive."""
    from distributed import Client

    logger = get_run_logger()
    try:
        runtimes = list(load_matrix(matrix).spec.runtimes)
        with Client(address, timeout=60) as client:
            states = client.run(prewarm_runtimes, runtimes, os.path.abspath(settings.env_cache()))
    except Exception as exc:  # a head start, not a requirement: the cells start their zygotes themselves
        logger.warning("could not prewarm the workers' runtimes: %s", exc)
        return
    for worker, by_runtime in sorted(states.items()):
        logger.info("worker %s runtimes: %s", worker, ", ".join(f"{k} {v}" for k, v in by_runtime.items()))
