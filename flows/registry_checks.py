"""Flows for the three daily uses: the nightly matrix, a registry event, one validator from the UI.

Each resolves model versions through the registry, runs `check-matrix` as a subflow on its own Dask
task runner, and writes the verdict back beside the version. The nightly flow, with no Dask address
set, starts one local cluster for all its models (workers keep their probe zygotes and imports from
one model to the next) and checks several models at once, so the cluster's queue never runs dry
between two models.
"""
from __future__ import annotations

import contextvars
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from enum import Enum
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from modelcompat import settings
from modelcompat.execution.harness import prewarm_runtimes
from modelcompat.flows.check_matrix import check_matrix
from modelcompat.matrix.spec import load_matrix
from modelcompat.model_registry.selection import open_registry
from modelcompat.orchestration.dask_runner import make_task_runner, start_local_cluster
from modelcompat.validators.registry import Registry

# The UI shows this as a dropdown of the validators installed where the deployment is served.
ValidatorName = Enum("ValidatorName", {n: n for n in Registry.discover().names}, type=str)  # type: ignore[misc]


def _check_version(name: str, version: str, *, matrix: str | None, trigger: str, validators: list[str] | None = None,
                   cells: str | None = None, params: dict[str, dict[str, Any]] | None = None,
                   force_validators: list[str] | None = None, dask_address: str | None = None) -> dict[str, Any]:
    registry = open_registry()  # $MODELCOMPAT_REGISTRY: a folder, or mlflow+http(s)://…
    entry = registry.version(name, version)
    runner = make_task_runner(dask_address or settings.dask_address(), settings.workers())
    summary = check_matrix.with_options(task_runner=runner)(
        matrix=matrix, model=entry["package"], validators=validators, cells=cells, params=params,
        force_validators=force_validators, trigger=trigger)
    registry.record_verdict(name, entry["version"], verdict=summary["verdict"], run_id=summary["run_id"],
                            report=f"modelcompat report {summary['run_id']} --format html")
    get_run_logger().info("%s %s: verdict %s (run %s)", name, entry["version"], summary["verdict"], summary["run_id"])
    return {"model": name, "version": entry["version"], "verdict": summary["verdict"], "run_id": summary["run_id"]}


def _name_event_run() -> str:
    p = flow_run.parameters
    return f"check {p.get('model_name')} {p.get('version')} (registry event)"


@flow(name="on-model-registered", flow_run_name=_name_event_run)
def on_model_registered(model_name: str, version: str, matrix: str | None = None) -> dict[str, Any]:
    """Check a model version when it is registered (or an alias moves to it); write the verdict back."""
    return _check_version(model_name, version, matrix=matrix, trigger="registry_event")


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
            return _check_version(name, version, matrix=matrix, trigger="schedule", dask_address=address)

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


def _name_one_run() -> str:
    p = flow_run.parameters
    validator = getattr(p.get("validator"), "value", p.get("validator"))
    return f"{validator} on {p.get('cells') or 'all cells'} of {p.get('model_name')} {p.get('version')}"


@flow(name="validate-one", flow_run_name=_name_one_run)
def validate_one(
    model_name: str,
    validator: ValidatorName,  # type: ignore[valid-type]
    cells: str = "*",
    version: str = "latest",
    params: dict[str, Any] | None = None,
    matrix: str | None = None,
    force: bool = True,
) -> dict[str, Any]:
    """Re-run one validator on one cell (or a filter of cells) of a registered model version.

    Args:
        model_name: registered model name.
        validator: the validator to re-run.
        cells: cell id or glob(s), comma-separated, e.g. `ort-1.16/cpu/*`.
        version: version or alias; `latest` = the most recently registered.
        params: the validator's own parameters (see `modelcompat validators`).
        matrix: matrix YAML; default matrices/default.yaml.
        force: re-run even if an identical check is stored.
    """
    name = getattr(validator, "value", validator)
    registry = open_registry()  # $MODELCOMPAT_REGISTRY: a folder, or mlflow+http(s)://…
    resolved = registry.latest(model_name) if version == "latest" else version
    return _check_version(model_name, resolved, matrix=matrix, trigger="ui", validators=[name], cells=cells,
                          params={name: params} if params else None, force_validators=[name] if force else None)
