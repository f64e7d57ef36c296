"""Flow `check-matrix`: load → expand → resolve → plan → execute on Dask → compare → aggregate → publish (artifacts
and the `modelcompat.verdict` event).

Thin on purpose: every step but the Prefect ones is a plain function of `modelcompat.orchestration.matrix_run`
(which `modelcompat run` also calls directly when nothing is to run and no Prefect API is configured); one
Prefect task per cell runs that cell's validators on a Dask worker (one probe process per cell), so orchestration
is paid per cell, not per check.
"""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.runtime import flow_run

from modelcompat import settings
from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.orchestration.dask_runner import DaskCellRunner, make_task_runner
from modelcompat.orchestration.matrix_run import (
    announce,
    cell_failed_reports,
    finish_run,
    keep_cell,
    new_run_id,
    prepare_run,
    run_name,
)
from modelcompat.orchestration.verdict_event import emit_verdict
from modelcompat.planning.plan import plan_markdown
from modelcompat.render.prefect_artifacts import artifact_key, markdown_summary, table_rows
from modelcompat.results.report import Report

__all__ = ["check_matrix", "flow_run_name", "new_run_id", "run_name"]


def flow_run_name(model_label: str | None = None) -> str:
    """The running check-matrix flow's name (Prefect calls this with no argument as the run starts)."""
    return run_name(flow_run.parameters, model_label)


@task(name="check-cell", cache_policy=NO_CACHE)
def check_cell_task(job: CellJob) -> list[Report]:
    """The cell's checks, run on a Dask worker offering its hardware (the runtime env is provisioned there)."""
    return _cell_runner().cell_result(job.cell.id)


def _cell_runner() -> DaskCellRunner:
    """The flow run's DaskCellRunner (the flow's default task runner is one, configured from settings)."""
    runner = getattr(FlowRunContext.get(), "task_runner", None)
    if not isinstance(runner, DaskCellRunner):
        raise RuntimeError("check-matrix must run with a DaskCellRunner (modelcompat.orchestration.dask_runner.make_task_runner)")
    return runner


@flow(name="check-matrix", flow_run_name=flow_run_name, persist_result=False,
      task_runner=make_task_runner(settings.dask_address(), settings.workers()))
def check_matrix(
    matrix: str | None = None,
    model: str | None = None,
    validators: list[str] | None = None,
    cells: str | None = None,
    store: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    force: bool = False,
    force_validators: list[str] | None = None,
    trigger: str = "cli",
    run_id: str | None = None,
) -> dict[str, Any]:
    """Check one model package against a compatibility matrix and append every report to the store."""
    logger = get_run_logger()
    runner = _cell_runner()

    # load + expand + resolve + plan: reuse what is unchanged, run the rest (published before anything runs)
    run = prepare_run(matrix=matrix, model=model, validators=validators, cells=cells, store=store, params=params,
                      force=force, force_validators=force_validators, offered=runner.offered_resources(),
                      run_id=run_id)
    key = artifact_key(run.package.manifest.name)
    create_markdown_artifact(key=key + "-plan", markdown=plan_markdown(run.plan), description=f"run {run.run_id}: plan")
    announce(run, logger)

    # execute: one task per cell that has something to run; no cluster is started when nothing has, and a
    # local run of one cell runs it in a thread of this process (DaskCellRunner.runs_inline)
    if run.jobs:
        runner.submit_cells(check_cell, run.jobs, preload=run.preload, started=run.running)
        if runner.ran_inline:
            logger.info("run %s: cell %s runs in the flow process (its probe in its own), no Dask cluster",
                        run.run_id, ", ".join(runner.ran_inline))
    futures = {check_cell_task.with_options(task_run_name=f"check {job.cell.id}").submit(job): job for job in run.jobs}
    for future in as_completed(list(futures)):
        job = futures[future]
        try:
            cell_reports = future.result()
        except Exception as exc:
            cell_reports = cell_failed_reports(run, job, exc)
        keep_cell(run, job, cell_reports, logger)

    # compare with the model's baseline, then aggregate: one atomic append, the final verdict in the runs row
    finished = finish_run(run, trigger=trigger, flow_run_id=str(flow_run.id) if flow_run.id else None, logger=logger)

    # publish
    summary = finished.summary
    create_table_artifact(key=key, table=table_rows(finished.reports),
                          description=f"run {run.run_id}: verdict {summary.verdict.value}")
    create_markdown_artifact(key=key + "-summary", markdown=markdown_summary(summary),
                             description=f"run {run.run_id} summary")
    emit_verdict(summary, logger)  # `modelcompat.verdict`: automations act on it (deployments/automations.yaml)
    # The flow's result is the documented JSON document (docs/run-summary.md); in-process callers
    # read it typed with `RunSummary.model_validate`.
    return summary.to_json()
