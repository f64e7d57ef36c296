"""Flow `check-matrix`: load → expand → resolve → plan → execute on Dask → compare → aggregate → publish.

Thin on purpose: every step is a call into `modelcompat`; one Prefect task per cell runs that cell's
validators on a Dask worker (one probe process per cell), so orchestration is paid per cell, not per check.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.runtime import flow_run

from modelcompat import __version__, settings
from modelcompat.baseline.comparison import compare_reports
from modelcompat.execution import progress
from modelcompat.execution.harness import (
    CellJob,
    check_cell,
    skipped_report,
    skipped_reports,
)
from modelcompat.matrix.cells import Cell
from modelcompat.matrix.spec import load_matrix
from modelcompat.model.package import load_package
from modelcompat.orchestration.dask_runner import DaskCellRunner, make_task_runner
from modelcompat.planning.params import resolve_params
from modelcompat.planning.plan import REUSABLE, make_plan, plan_markdown
from modelcompat.planning.scheduling import longest_first
from modelcompat.render.prefect_artifacts import markdown_summary, table_rows
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.results.summary import run_summary, verdict
from modelcompat.store import RunRecord, Store
from modelcompat.validators.registry import Registry


def new_run_id() -> str:
    """Sortable and unique: UTC timestamp plus randomness (`20261122T021500Z-3f9a1c`)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def run_name(parameters: Mapping[str, Any], model_label: str | None = None) -> str:
    """What a check-matrix run checks, for the UI: `check <model> on <matrix>[, cells <glob>][, validators <names>]`.

    A parameter left at None means its default (the demo package, $MODELCOMPAT_MATRIX or the default
    matrix), so the name says that default rather than "None". `model_label` (e.g. `demo-mlp 1.0.0`)
    replaces the package folder's name when the caller knows the registered name and version.
    """
    model = parameters.get("model")
    label = model_label or (str(model).rstrip("/").rsplit("/", 1)[-1] if model else "demo")
    matrix = str(parameters.get("matrix") or settings.default_matrix())
    parts = [f"check {label} on {matrix.rstrip('/').rsplit('/', 1)[-1].removesuffix('.yaml').removesuffix('.yml')}"]
    if parameters.get("cells"):
        parts.append(f"cells {parameters['cells']}")
    if parameters.get("validators"):
        parts.append(f"validators {','.join(parameters['validators'])}")
    return ", ".join(parts)


def flow_run_name(model_label: str | None = None) -> str:
    """The running check-matrix flow's name (Prefect calls this with no argument as the run starts)."""
    return run_name(flow_run.parameters, model_label)


@task(name="check-cell", cache_policy=NO_CACHE)
def check_cell_task(job: CellJob) -> list[Report]:
    """The cell's checks, run on a Dask worker offering its hardware (the runtime env is provisioned there)."""
    return _cell_runner().cell_result(job.cell.id)


def _artifact_key(model_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes."""
    return "compat-" + "".join(ch if ch.isalnum() else "-" for ch in model_name.lower())


def _cell_runner() -> DaskCellRunner:
    """The flow run's DaskCellRunner (the flow's default task runner is one, configured from settings)."""
    runner = getattr(FlowRunContext.get(), "task_runner", None)
    if not isinstance(runner, DaskCellRunner):
        raise RuntimeError("check-matrix must run with a DaskCellRunner (modelcompat.orchestration.dask_runner.make_task_runner)")
    return runner


def _task_failed_reports(job: CellJob, exc: BaseException, registry: Registry) -> list[Report]:
    """A cell whose task died (worker lost, unexpected exception): every check says `error`, with why."""
    finding = Finding(code="cell.task_failed", severity=Severity.ERROR, step="execute",
                      message=f"the task checking {job.cell.id} failed: {type(exc).__name__}: {exc}"[:2000],
                      remediation="re-run the cell (`--cells " + job.cell.id + "`); if it repeats, check the Dask worker logs")
    return [r.model_copy(update={"status": Status.ERROR, "findings": (finding,)})
            for r in skipped_reports(job, "", "cell.task_failed", registry)]


def _save_checks(store_: Store, reports: list[Report], logger: Any) -> None:
    """Keep each finished check that reached a verdict in the store's check cache as soon as its cell is
    done: if this process dies before the run commits, the next run reuses them (docs/caching.md)."""
    for report in reports:
        if report.cache_key and report.status.value in REUSABLE:
            try:
                store_.save_check(report)
            except Exception as exc:  # a cache that cannot be written costs re-runs, never the run
                logger.warning("could not keep %s/%s in the check cache: %s", report.cell, report.validator, exc)


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
    started = datetime.now(timezone.utc)
    run_id = run_id or new_run_id()

    # load + expand + resolve
    loaded_matrix = load_matrix(matrix or settings.default_matrix())
    selected: list[Cell] = loaded_matrix.select(cells)
    if model is None:
        from modelcompat.model.demo import build_demo
        package = build_demo()
    else:
        package = load_package(model)
    registry = Registry.discover()
    names = registry.select(validators)
    # the matrix's params, then the package manifest's, then the run's own (docs/validators.md, "Parameters")
    params = resolve_params(loaded_matrix, package, params, registry)

    # plan: reuse what is unchanged, run the rest (the plan is published before anything runs)
    store_ = Store(store or settings.store_uri())
    env_cache = settings.env_cache()
    plan = make_plan(selected, names, package, registry, params=params, store=store_, force=force,
                     force_validators=set(force_validators or ()), env_cache=env_cache,
                     offered=_cell_runner().offered_resources())
    create_markdown_artifact(key=_artifact_key(package.manifest.name) + "-plan", markdown=plan_markdown(plan),
                             description=f"run {run_id}: plan")
    to_run = [p for p in plan if p.decision == "run"]
    progress.notify("planned", total=len(plan), cells=[c.id for c in selected], validators=names,
                    to_run=len(to_run))
    logger.info("run %s: %d checks planned, %d to run, of %s %s", run_id, len(plan), len(to_run),
                package.manifest.name, package.manifest.version)

    done: dict[tuple[str, str], Report] = {}
    for p in plan:
        base = CellJob(cell=p.cell, package_root=str(package.root), validators=(p.validator,), run_id=run_id)
        version = getattr(registry.validators.get(p.validator), "version", "?")
        if p.decision == "skipped":
            done[(p.cell.id, p.validator)] = skipped_report(base, p.validator, version, p.code or "skipped", p.reason)
        elif p.decision == "cached":
            done[(p.cell.id, p.validator)] = p.reused.model_copy(update={
                "run_id": run_id, "cached": True, "cached_from": p.reused.cached_from or p.reused.run_id})
    if len(done) < len(plan):
        progress.notify("cell_done", cell="cached", reports=list(done.values()))

    # execute: one task per cell that has something to run; no cluster is started when nothing has
    by_cell: dict[str, list[str]] = {}
    for p in to_run:
        by_cell.setdefault(p.cell.id, []).append(p.validator)
    cells_by_id = {c.id: c for c in selected}
    # Absolute paths (symlinks kept: on a cluster they may name the shared mount): a worker does not
    # share this process's working directory.
    jobs = [CellJob(cell=cells_by_id[cell_id], package_root=os.path.abspath(package.root),
                    validators=tuple(by_cell[cell_id]), params=params, run_id=run_id,
                    env_cache=os.path.abspath(env_cache)) for cell_id in longest_first(plan)]
    futures = {}
    if jobs:
        preload = sorted({name for v in {p.validator for p in to_run}
                          for name in getattr(registry.validators.get(v), "preload", ())})
        _cell_runner().submit_cells(check_cell, jobs, preload=preload)
    for job in jobs:
        futures[check_cell_task.with_options(task_run_name=f"check {job.cell.id}").submit(job)] = job
    for future in as_completed(list(futures)):
        job = futures[future]
        try:
            cell_reports = future.result()
        except Exception as exc:
            cell_reports = _task_failed_reports(job, exc, registry)
        _save_checks(store_, cell_reports, logger)
        done.update({(r.cell, r.validator): r for r in cell_reports})
        progress.notify("cell_done", cell=job.cell.id, reports=cell_reports)
    reports = [done[(p.cell.id, p.validator)] for p in plan]

    # compare with the model's baseline, before appending: the runs row records the final verdict
    try:
        comparison = compare_reports(store_, package.manifest.name, reports)
    except Exception as exc:  # an unreadable baseline must not lose the run's reports
        logger.error("run %s: comparison with the baseline failed, verdict without it: %s", run_id, exc)
        comparison = None
    run_verdict = comparison.verdict(verdict(reports)) if comparison else verdict(reports)

    # aggregate
    finished = datetime.now(timezone.utc)
    flow_run_id = str(flow_run.id) if flow_run.id else None
    record = RunRecord(
        run_id=run_id, flow_run_id=flow_run_id, trigger=trigger, matrix=loaded_matrix.name,
        matrix_path=str(loaded_matrix.path), model_name=package.manifest.name,
        model_version=package.manifest.version, model_sha256=package.primary_sha256, verdict=run_verdict,
        started_at=started, finished_at=finished, code_version=__version__, n_reports=len(reports),
    )
    store_.append_run(record, reports)

    # publish
    summary = run_summary(
        run_id=run_id, flow_run_id=flow_run_id, trigger=trigger,
        model={"name": package.manifest.name, "version": package.manifest.version, "sha256": package.primary_sha256},
        matrix={"name": loaded_matrix.name, "path": str(loaded_matrix.path)},
        reports=reports, started_at=started.isoformat(), finished_at=finished.isoformat(),
        plan={d: sum(1 for p in plan if p.decision == d) for d in ("run", "cached", "skipped")},
        comparison=comparison,
    )
    key = _artifact_key(package.manifest.name)
    create_table_artifact(key=key, table=table_rows(reports), description=f"run {run_id}: verdict {run_verdict}")
    create_markdown_artifact(key=key + "-summary", markdown=markdown_summary(summary),
                             description=f"run {run_id} summary")
    # The flow's result is the documented JSON document (docs/run-summary.md); in-process callers
    # read it typed with `RunSummary.model_validate`.
    return summary.to_json()
