"""What the registry-driven flows share: check one registered model version and write its verdict back.

Used by nightly-matrix, on-model-registered and validate-one; each runs `check-matrix` as its subflow.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from prefect import get_run_logger

from modelcompat import settings
from modelcompat.flows.check_matrix import check_matrix, flow_run_name
from modelcompat.model_registry.selection import open_registry
from modelcompat.orchestration.dask_runner import make_task_runner
from modelcompat.results.summary import RunSummary


def check_version(name: str, version: str, *, matrix: str | None, trigger: str, validators: list[str] | None = None,
                  cells: str | None = None, params: dict[str, dict[str, Any]] | None = None,
                  force_validators: list[str] | None = None, dask_address: str | None = None) -> dict[str, Any]:
    """Resolve the version in the registry, run check-matrix on its package, record the verdict beside it."""
    registry = open_registry()  # $MODELCOMPAT_REGISTRY: a folder, or mlflow+http(s)://…
    entry = registry.version(name, version)
    runner = make_task_runner(dask_address or settings.dask_address(), settings.workers())
    # The subflow is named after the registered model and version, not its package folder's name.
    named = partial(flow_run_name, model_label=f"{name} {entry['version']}")
    summary = RunSummary.model_validate(check_matrix.with_options(task_runner=runner, flow_run_name=named)(
        matrix=matrix, model=entry["package"], validators=validators, cells=cells, params=params,
        force_validators=force_validators, trigger=trigger))
    registry.record_verdict(name, entry["version"], verdict=summary.verdict.value, run_id=summary.run_id,
                            report=f"modelcompat report {summary.run_id} --format html")
    get_run_logger().info("%s %s: verdict %s (run %s)", name, entry["version"], summary.verdict, summary.run_id)
    return {"model": name, "version": entry["version"], "verdict": summary.verdict.value, "run_id": summary.run_id}
