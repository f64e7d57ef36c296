"""Flow `check-matrix`: load → expand → resolve → plan → execute on Dask → aggregate → publish.

Thin on purpose: every step is a call into `modelcompat`; one Prefect task per cell runs that cell's
validators on a Dask worker (one probe process per cell), so orchestration is paid per cell, not per check.
"""
from __future__ import annotations

import secrets
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any

import dask
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.runtime import flow_run

from modelcompat import __version__, progress, settings
from modelcompat.cells import Cell
from modelcompat.harness import CellJob, check_cell, skipped_reports
from modelcompat.matrix import load_matrix
from modelcompat.orchestration import detect_local_resources, unavailable_reason, worker_resources
from modelcompat.package import load_package
from modelcompat.publish import markdown_summary, table_rows
from modelcompat.report import Finding, Report, Severity, Status
from modelcompat.store import RunRecord, Store
from modelcompat.summary import run_summary, verdict
from modelcompat.validators.registry import Registry


def new_run_id() -> str:
    """Sortable and unique: UTC timestamp plus randomness (`20261122T021500Z-3f9a1c`)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _flow_run_name() -> str:
    params = flow_run.parameters
    model = str(params.get("model", "")).rstrip("/").rsplit("/", 1)[-1]
    matrix = str(params.get("matrix", "")).rsplit("/", 1)[-1].removesuffix(".yaml")
    return f"check {model} on {matrix or 'default'}"


@task(name="check-cell", cache_policy=NO_CACHE)
def check_cell_task(job: CellJob) -> list[Report]:
    """Check one cell on whichever Dask worker runs it (provisions the runtime env there)."""
    return check_cell(job)


def _offered_resources() -> dict[str, dict[str, float]]:
    ctx = FlowRunContext.get()
    client = getattr(getattr(ctx, "task_runner", None), "client", None)
    if client is None:  # not on Dask (e.g. a thread runner): this host is the only worker
        return {"local": detect_local_resources()}
    return worker_resources(client)


def _task_failed_reports(job: CellJob, exc: BaseException, registry: Registry) -> list[Report]:
    """A cell whose task died (worker lost, unexpected exception): every check says `error`, with why."""
    finding = Finding(code="cell.task_failed", severity=Severity.ERROR, step="execute",
                      message=f"the task checking {job.cell.id} failed: {type(exc).__name__}: {exc}"[:2000],
                      remediation="re-run the cell (`--cells " + job.cell.id + "`); if it repeats, check the Dask worker logs")
    return [r.model_copy(update={"status": Status.ERROR, "findings": (finding,)})
            for r in skipped_reports(job, "", "cell.task_failed", registry)]


@flow(name="check-matrix", flow_run_name=_flow_run_name, persist_result=False)
def check_matrix(
    matrix: str | None = None,
    model: str | None = None,
    validators: list[str] | None = None,
    cells: str | None = None,
    store: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    trigger: str = "cli",
    run_id: str | None = None,
) -> dict[str, Any]:
    """Check one model package against a compatibility matrix and append every report to the store."""
    logger = get_run_logger()
    started = datetime.now(timezone.utc)
    run_id = run_id or new_run_id()

    # load + expand + resolve
    loaded_matrix = load_matrix(matrix or settings.default_matrix())
    selected: list[Cell] = loaded_matrix.select(cells)
    if model is None:
        from modelcompat.demo import build_demo
        package = build_demo()
    else:
        package = load_package(model)
    registry = Registry.discover()
    names = registry.select(validators)
    params = params or {}
    for name, value in params.items():
        if name in registry.validators:
            registry.validators[name].Params.model_validate(value)

    # plan: which cells can run where (hardware routing); everything selected runs (no cache yet)
    offered = _offered_resources()
    jobs = [CellJob(cell=c, package_root=str(package.root), validators=tuple(names), params=params,
                    run_id=run_id, env_cache=str(settings.env_cache())) for c in selected]
    progress.notify("planned", total=len(jobs) * len(names), cells=[c.id for c in selected], validators=names)
    logger.info("run %s: %d cells × %d validators of %s %s", run_id, len(jobs), len(names),
                package.manifest.name, package.manifest.version)

    # execute
    reports_by_cell: dict[str, list[Report]] = {}
    futures = {}
    for job in jobs:
        reason = unavailable_reason(job.cell, offered)
        if reason:
            reports_by_cell[job.cell.id] = skipped_reports(job, reason, "cell.hardware_unavailable", registry)
            progress.notify("cell_done", cell=job.cell.id, reports=reports_by_cell[job.cell.id])
            continue
        # Route cells that need hardware (GPU=1) only to workers offering it.
        routing = dask.annotate(resources=dict(job.cell.hardware.resources)) if job.cell.hardware.resources else nullcontext()
        with routing:
            future = check_cell_task.with_options(task_run_name=f"check {job.cell.id}").submit(job)
        futures[future] = job
    for future in as_completed(list(futures)):
        job = futures[future]
        try:
            cell_reports = future.result()
        except Exception as exc:
            cell_reports = _task_failed_reports(job, exc, registry)
        reports_by_cell[job.cell.id] = cell_reports
        progress.notify("cell_done", cell=job.cell.id, reports=cell_reports)
    reports = [r for c in selected for r in reports_by_cell[c.id]]

    # aggregate
    finished = datetime.now(timezone.utc)
    flow_run_id = str(flow_run.id) if flow_run.id else None
    run_verdict = verdict(reports)
    record = RunRecord(
        run_id=run_id, flow_run_id=flow_run_id, trigger=trigger, matrix=loaded_matrix.name,
        matrix_path=str(loaded_matrix.path), model_name=package.manifest.name,
        model_version=package.manifest.version, model_sha256=package.primary_sha256, verdict=run_verdict,
        started_at=started, finished_at=finished, code_version=__version__, n_reports=len(reports),
    )
    Store(store or settings.store_uri()).append_run(record, reports)

    # publish
    summary = run_summary(
        run_id=run_id, flow_run_id=flow_run_id, trigger=trigger,
        model={"name": package.manifest.name, "version": package.manifest.version, "sha256": package.primary_sha256},
        matrix={"name": loaded_matrix.name, "path": str(loaded_matrix.path)},
        reports=reports, started_at=started.isoformat(), finished_at=finished.isoformat(),
    )
    key = "compat-" + "".join(ch if ch.isalnum() else "-" for ch in package.manifest.name.lower())
    create_table_artifact(key=key, table=table_rows(reports), description=f"run {run_id}: verdict {run_verdict}")
    create_markdown_artifact(key=key + "-summary", markdown=markdown_summary(summary),
                             description=f"run {run_id} summary")
    return summary
