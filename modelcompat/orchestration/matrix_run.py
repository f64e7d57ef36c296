"""The steps of a check-matrix run that need no Prefect: prepare (load, resolve, plan), keep each finished cell,
finish (compare with the baseline, append to the store, summarise).

The flow `check-matrix` runs them between its Prefect calls; `modelcompat run` runs them itself when nothing is
to execute and no Prefect API is configured (no server to start for a run that runs nothing): one way either way.
Otherwise the CLI plans before importing Prefect and hands the prepared run (its one inline cell maybe already
started) to the flow, which then plans nothing again (`hand_over`).
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from modelcompat import __version__, settings
from modelcompat.baseline.comparison import compare_reports
from modelcompat.execution import progress
from modelcompat.execution.harness import CellJob, skipped_report, skipped_reports
from modelcompat.matrix.cells import Cell
from modelcompat.matrix.spec import Matrix, load_matrix
from modelcompat.model.package import ModelPackage, load_package
from modelcompat.planning.params import resolve_params
from modelcompat.planning.plan import REUSABLE, PlannedCheck, make_plan
from modelcompat.planning.scheduling import longest_first
from modelcompat.ranges.hints import quote_ranges
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.results.summary import RunSummary, run_summary, verdict
from modelcompat.store import RunRecord, Store, audit
from modelcompat.validators.registry import Registry

log = logging.getLogger(__name__)


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


def new_run_id() -> str:
    """Sortable and unique: UTC timestamp plus randomness (`20261122T021500Z-3f9a1c`)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class PreparedRun:
    """A run planned and not yet finished: what it checks, its plan, and every report it has so far."""

    run_id: str
    started: datetime
    matrix: Matrix
    cells: list[Cell]
    package: ModelPackage
    registry: Registry
    validators: list[str]
    params: dict[str, dict[str, Any]]
    store: Store
    plan: list[PlannedCheck]
    jobs: list[CellJob]  # one per cell with something to run, longest first
    done: dict[tuple[str, str], Report] = field(default_factory=dict)  # skipped, cached, then each cell's
    arguments: dict[str, Any] = field(default_factory=dict)  # what prepare_run was asked (see hand_over)
    running: dict[str, Future[Any]] = field(default_factory=dict)  # cells already started in this process

    @property
    def to_run(self) -> list[PlannedCheck]:
        return [p for p in self.plan if p.decision == "run"]

    @property
    def preload(self) -> list[str]:
        """The slow imports (`Validator.preload`) of the checks to run, for local workers to share."""
        return sorted({name for v in {p.validator for p in self.to_run}
                       for name in getattr(self.registry.validators.get(v), "preload", ())})


@dataclass(frozen=True)
class FinishedRun:
    """A run appended to the store: its row, its reports in plan order, and its summary."""

    record: RunRecord
    reports: list[Report]
    summary: RunSummary


_handed_over: dict[str, PreparedRun] = {}
_handed_over_lock = threading.Lock()


def hand_over(run: PreparedRun) -> None:
    """Let this process's next `prepare_run` with `run`'s id and arguments take `run` as it is, once.

    `modelcompat run` plans (and may start its one cell) before importing Prefect, then calls the flow with
    the same arguments and run id: the flow's plan is then this one, not a second reading of the store.
    """
    with _handed_over_lock:
        _handed_over[run.run_id] = run


def prepare_run(*, matrix: str | None, model: str | None, validators: list[str] | None, cells: str | None,
                store: str | None, params: dict[str, dict[str, Any]] | None, force: bool,
                force_validators: Iterable[str] | None, offered: dict[str, dict[str, float]] | None,
                run_id: str | None = None) -> PreparedRun:
    """Load and expand the matrix, resolve the package, plan every (cell, validator): `run`, `cached` or
    `skipped`. The cached and skipped reports are ready at once; the cells with something to run are
    `jobs`, longest first. Reads the store, writes nothing. A run handed over (`hand_over`) under this id
    with the same arguments is returned as it is."""
    arguments = {"matrix": matrix, "model": model, "validators": validators, "cells": cells, "store": store,
                 "params": params or {}, "force": force, "force_validators": sorted(set(force_validators or ())),
                 "offered": offered}
    if run_id is not None:
        with _handed_over_lock:
            handed = _handed_over.pop(run_id, None)
        if handed is not None and handed.arguments == arguments:
            return handed
    started = datetime.now(timezone.utc)
    run_id = run_id or new_run_id()
    loaded = load_matrix(matrix or settings.default_matrix())
    selected = loaded.select(cells)
    if model is None:
        from modelcompat.model.demo import build_demo
        package = build_demo()
    else:
        package = load_package(model)
    registry = Registry.discover()
    names = registry.select(validators)
    # the matrix's params, then the package manifest's, then the run's own (docs/validators.md, "Parameters")
    resolved = resolve_params(loaded, package, params, registry)
    store_ = Store(store or settings.store_uri())
    env_cache = settings.env_cache()
    plan = make_plan(selected, names, package, registry, params=resolved, store=store_, force=force,
                     force_validators=set(force_validators or ()), env_cache=env_cache, offered=offered)

    done: dict[tuple[str, str], Report] = {}
    for p in plan:
        if p.decision == "run":
            continue
        base = CellJob(cell=p.cell, package_root=str(package.root), validators=(p.validator,), run_id=run_id)
        if p.decision == "skipped":
            version = getattr(registry.validators.get(p.validator), "version", "?")
            done[(p.cell.id, p.validator)] = skipped_report(base, p.validator, version, p.code or "skipped", p.reason)
        elif p.decision == "cached" and p.reused is not None:
            done[(p.cell.id, p.validator)] = p.reused.model_copy(update={
                "run_id": run_id, "cached": True, "cached_from": p.reused.cached_from or p.reused.run_id})

    by_cell: dict[str, list[str]] = {}
    for p in plan:
        if p.decision == "run":
            by_cell.setdefault(p.cell.id, []).append(p.validator)
    cells_by_id = {c.id: c for c in selected}
    # Absolute paths (symlinks kept: on a cluster they may name the shared mount): a worker does not
    # share this process's working directory.
    jobs = [CellJob(cell=cells_by_id[cell_id], package_root=os.path.abspath(package.root),
                    validators=tuple(by_cell[cell_id]), params=resolved, run_id=run_id,
                    env_cache=os.path.abspath(env_cache)) for cell_id in longest_first(plan)]
    return PreparedRun(run_id=run_id, started=started, matrix=loaded, cells=selected, package=package,
                       registry=registry, validators=names, params=resolved, store=store_, plan=plan, jobs=jobs,
                       done=done, arguments=arguments)


def announce(run: PreparedRun, logger: Any = log) -> None:
    """Tell the progress listeners (the CLI's bar) the plan, and hand them the reports it already has."""
    to_run = run.to_run
    progress.notify("planned", total=len(run.plan), cells=[c.id for c in run.cells], validators=run.validators,
                    to_run=len(to_run))
    logger.info("run %s: %d checks planned, %d to run, of %s %s", run.run_id, len(run.plan), len(to_run),
                run.package.manifest.name, run.package.manifest.version)
    if run.done and len(run.done) < len(run.plan):
        progress.notify("cell_done", cell="cached", reports=list(run.done.values()))


def cell_failed_reports(run: PreparedRun, job: CellJob, exc: BaseException) -> list[Report]:
    """A cell whose job died (worker lost, unexpected exception): every check says `error`, with why."""
    finding = Finding(code="cell.task_failed", severity=Severity.ERROR, step="execute",
                      message=f"the task checking {job.cell.id} failed: {type(exc).__name__}: {exc}"[:2000],
                      remediation="re-run the cell (`--cells " + job.cell.id + "`); if it repeats, check the Dask worker logs")
    return [r.model_copy(update={"status": Status.ERROR, "findings": (finding,)})
            for r in skipped_reports(job, "", "cell.task_failed", run.registry)]


def keep_cell(run: PreparedRun, job: CellJob, reports: list[Report], logger: Any = log) -> None:
    """A finished cell: keep each check that reached a verdict in the store's check cache at once (if this
    process dies before the run commits, the next run reuses them: docs/caching.md), then count it done."""
    for report in reports:
        if report.cache_key and report.status.value in REUSABLE:
            try:
                run.store.save_check(report)
            except Exception as exc:  # a cache that cannot be written costs re-runs, never the run
                logger.warning("could not keep %s/%s in the check cache: %s", report.cell, report.validator, exc)
    run.done.update({(r.cell, r.validator): r for r in reports})
    progress.notify("cell_done", cell=job.cell.id, reports=reports)


def finish_run(run: PreparedRun, *, trigger: str, flow_run_id: str | None, logger: Any = log) -> FinishedRun:
    """Compare with the model's baseline, then append the run (its final verdict in the runs row) to the store
    in one atomic append; the run's summary (docs/run-summary.md)."""
    reports = [run.done[(p.cell.id, p.validator)] for p in run.plan]
    manifest = run.package.manifest
    # A stored `modelcompat range` of this artifact is tested upgrade advice: its lower bound is quoted first.
    reports = quote_ranges(run.store, manifest.name, reports)
    try:
        comparison = compare_reports(run.store, manifest.name, reports)
    except Exception as exc:  # an unreadable baseline must not lose the run's reports
        logger.error("run %s: comparison with the baseline failed, verdict without it: %s", run.run_id, exc)
        comparison = None
    run_verdict = comparison.verdict(verdict(reports)) if comparison else verdict(reports)

    finished = datetime.now(timezone.utc)
    record = RunRecord(
        run_id=run.run_id, flow_run_id=flow_run_id, trigger=trigger, matrix=run.matrix.name,
        matrix_path=str(run.matrix.path), model_name=manifest.name, model_version=manifest.version,
        model_sha256=run.package.primary_sha256, verdict=run_verdict, started_at=run.started,
        finished_at=finished, code_version=__version__, n_reports=len(reports),
    )
    run.store.append_run(record, reports)
    try:  # the run is stored; a trail that cannot be written is loud, never a lost run
        audit.append(run.store, "run.verdict", model=manifest.name, now=finished,
                     subject={"run_id": run.run_id, "verdict": getattr(run_verdict, "value", run_verdict), "model_version": manifest.version,
                              "model_sha256": run.package.primary_sha256, "matrix": run.matrix.name,
                              "trigger": trigger, "flow_run_id": flow_run_id})
    except Exception as exc:  # noqa: BLE001
        logger.error("run %s: could not append its verdict to the audit trail: %s", run.run_id, exc)
    summary = run_summary(
        run_id=run.run_id, flow_run_id=flow_run_id, trigger=trigger,
        model={"name": manifest.name, "version": manifest.version, "sha256": run.package.primary_sha256},
        matrix={"name": run.matrix.name, "path": str(run.matrix.path)},
        reports=reports, started_at=run.started.isoformat(), finished_at=finished.isoformat(),
        plan={d: sum(1 for p in run.plan if p.decision == d) for d in ("run", "cached", "skipped")},
        comparison=comparison,
    )
    return FinishedRun(record=record, reports=reports, summary=summary)
