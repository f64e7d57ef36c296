"""The plan: for every (cell, validator), run it (and why) or reuse a stored report with the same cache key.

Reuse goes through the store rather than Prefect's task cache: a Prefect task here is a whole cell
(≈70 ms a task on Dask, DESIGN.md), while reuse is decided per (cell, validator); the store already
holds every report with its key, and it outlives the ephemeral Prefect server a CLI run starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from modelcompat.cells import Cell
from modelcompat.environments import existing_env
from modelcompat.orchestration import unavailable_reason
from modelcompat.fingerprint import cache_key, changed_inputs, input_components
from modelcompat.package import ModelPackage
from modelcompat.report import Report
from modelcompat.store import Store, report_from_row
from modelcompat.validators.registry import Registry

Decision = Literal["run", "cached", "skipped"]
# A report is reusable only if the check reached a verdict: `error` (could not run) and `skipped`
# (e.g. no hardware at the time) are always tried again.
REUSABLE = ("pass", "warn", "fail")


@dataclass(frozen=True)
class PlannedCheck:
    cell: Cell
    validator: str
    decision: Decision
    reason: str
    cache_key: str | None = None
    components: dict[str, str] | None = None
    reused: Report | None = None
    code: str | None = None  # finding code of a `skipped` decision


class History:
    """The store's reports indexed for planning (read once per plan)."""

    def __init__(self, store: Store | None) -> None:
        self._store = store
        frame = store.reports() if store is not None else pd.DataFrame()
        if frame.empty or "cache_key" not in frame:
            self._by_key: dict[str, dict[str, Any]] = {}
            self._latest: dict[tuple[str, str, str], dict[str, Any]] = {}
            return
        runs = store.runs()[["run_id", "model_name", "started_at"]].rename(columns={"started_at": "run_started_at"})
        frame = frame.merge(runs, on="run_id", how="inner").sort_values("run_started_at", kind="stable")
        rows = frame.to_dict("records")
        self._by_key = {r["cache_key"]: r for r in rows if r.get("cache_key") and r["status"] in REUSABLE}
        self._latest = {(r["model_name"], r["cell"], r["validator"]): r for r in rows}

    def reusable(self, key: str) -> Report | None:
        """A committed report with this key; else one from the store's check cache (a check finished by a
        run that never committed, e.g. killed mid-run: its `run_id` names that run, docs/caching.md)."""
        row = self._by_key.get(key)
        if row:
            return report_from_row(row)
        if self._store is None:
            return None
        report = self._store.check(key)
        return report if report is not None and report.status.value in REUSABLE else None

    def previous_inputs(self, model: str, cell: str, validator: str) -> dict[str, str] | None:
        row = self._latest.get((model, cell, validator))
        return dict(row.get("cache_inputs") or {}) if row else None


def make_plan(cells: list[Cell], validators: list[str], package: ModelPackage, registry: Registry, *,
              params: dict[str, dict[str, Any]] | None = None, store: Store | None = None,
              force: bool = False, force_validators: set[str] | None = None,
              env_cache: Path | None = None,
              offered: dict[str, dict[str, float]] | None = None) -> list[PlannedCheck]:
    """Decide every (cell, validator) without running anything (and without building any environment).

    `offered` (worker -> Dask resources) lets cells whose hardware no worker has be planned `skipped`.
    """
    params = params or {}
    force_validators = force_validators or set()
    history = History(store)
    plan: list[PlannedCheck] = []
    for cell in cells:
        env = existing_env(cell.runtime, env_cache)
        no_hardware = unavailable_reason(cell, offered) if offered is not None else None
        for name in validators:
            if no_hardware:
                plan.append(PlannedCheck(cell, name, "skipped", no_hardware, code="cell.hardware_unavailable"))
                continue
            cls = registry.validators.get(name)
            if cls is None:  # failed to load: the harness reports the error
                plan.append(PlannedCheck(cell, name, "run", "validator could not be loaded"))
                continue
            skip = cls().applies_to(cell, package)
            if skip:
                plan.append(PlannedCheck(cell, name, "skipped", skip, code=f"{name}.not_applicable"))
                continue
            components = input_components(cls, params.get(name, {}), cell, package, env)
            key = cache_key(components) if components is not None else None
            if force or name in force_validators:
                plan.append(PlannedCheck(cell, name, "run", "forced", key, components))
                continue
            if components is None:
                plan.append(PlannedCheck(cell, name, "run",
                                         f"runtime {cell.runtime.id} not provisioned yet", None, None))
                continue
            reused = history.reusable(key)
            if reused is not None:
                origin = reused.cached_from or reused.run_id
                plan.append(PlannedCheck(cell, name, "cached", f"unchanged since run {origin}", key, components, reused))
                continue
            before = history.previous_inputs(package.manifest.name, cell.id, name)
            if before is None:
                reason = "no earlier report of this check"
            elif not before:
                reason = "the earlier report has no cache key"
            else:
                reason = "; ".join(changed_inputs(before, components)) or "earlier report did not reach a verdict"
            plan.append(PlannedCheck(cell, name, "run", reason, key, components))
    return plan


def plan_markdown(plan: list[PlannedCheck]) -> str:
    """The plan as a markdown table (a Prefect artifact and `modelcompat plan --markdown`)."""
    counts = {d: sum(1 for p in plan if p.decision == d) for d in ("run", "cached", "skipped")}
    lines = [f"# Plan: {counts['run']} to run, {counts['cached']} cached, {counts['skipped']} skipped", "",
             "| cell | validator | decision | why |", "|---|---|---|---|"]
    for p in plan:
        lines.append(f"| `{p.cell.id}` | {p.validator} | {p.decision} | {p.reason.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
