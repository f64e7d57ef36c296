"""The plan: for every (cell, validator), run it (and why) or reuse a stored report with the same cache key.

Reuse goes through the store rather than Prefect's task cache: a Prefect task here is a whole cell
(≈70 ms a task on Dask, DESIGN.md), while reuse is decided per (cell, validator); the store already
holds every report with its key, and it outlives the ephemeral Prefect server a CLI run starts.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from modelcompat.matrix.cells import Cell
from modelcompat.matrix.resources import unavailable_reason
from modelcompat.model.package import ModelPackage
from modelcompat.planning.cache_keys import cache_key, changed_inputs, input_components
from modelcompat.results.report import Report
from modelcompat.runtime.environments import existing_env
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
    expected_s: float | None = None  # how long this check took the last time it ran (schedules long cells first)
    setup_s: float | None = None  # the cell's time outside its checks last time (probe start, …); per cell


# How many of a model's most recent runs the planner reads. Every run records all its checks (reused
# ones too, with cached_from), so the last runs hold the model's current reports; older ones only
# matter for checks dropped and re-added later, which the check cache (by key) still finds.
RECENT_RUNS = 20


class History:
    """A model's recent reports indexed for planning (read once per plan; cost independent of history length)."""

    def __init__(self, store: Store | None, model_name: str | None = None, recent_runs: int = RECENT_RUNS) -> None:
        self._store = store
        self._by_key: dict[str, dict[str, Any]] = {}
        self._latest: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._setup: dict[tuple[str, str], float] = {}
        if store is None:
            return
        runs = store.runs()
        if runs.empty:
            return
        if model_name is not None:
            runs = runs[runs["model_name"] == model_name]
        runs = runs.tail(recent_runs)  # runs() is sorted by started_at
        for run_id, model in zip(runs["run_id"], runs["model_name"], strict=True):
            frame = store.reports(run_id)
            if frame.empty or "cache_key" not in frame:
                continue
            for row in frame.to_dict("records"):
                row["model_name"] = model
                if row.get("cache_key") and row["status"] in REUSABLE:
                    self._by_key[row["cache_key"]] = row
                self._latest[(model, row["cell"], row["validator"])] = row
            self._setup.update({(model, cell): s for cell, s in _cell_setup_seconds(frame).items()})

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

    def previous_duration(self, model: str, cell: str, validator: str) -> float | None:
        """Seconds the check took in its latest report that really ran it (not skipped)."""
        row = self._latest.get((model, cell, validator))
        if not row or row.get("status") == "skipped" or row.get("duration_s") is None:
            return None
        return float(row["duration_s"])

    def previous_setup(self, model: str, cell: str) -> float | None:
        """Seconds the cell spent outside its checks (runtime start, probe start) the last time it ran."""
        return self._setup.get((model, cell))

    def previous_inputs(self, model: str, cell: str, validator: str) -> dict[str, str] | None:
        row = self._latest.get((model, cell, validator))
        return dict(row.get("cache_inputs") or {}) if row else None


def _cell_setup_seconds(frame: Any) -> dict[str, float]:
    """Per cell of one run: its checks' span minus their summed durations, over the checks that really
    ran in that run (a reused report keeps the time of the run that made it). Only cells that ran two
    checks or more: the runtime and probe start falls inside the span when a static check (e.g. the
    unsafe_serialization gate) ran first, which a one-check re-run cannot show."""
    from datetime import datetime

    ran = frame[(frame["status"] != "skipped") & ~frame["cached"].astype(bool)]
    setup: dict[str, float] = {}
    for cell, rows in ran.groupby("cell"):
        if len(rows) < 2:
            continue
        starts = [datetime.fromisoformat(str(s)).timestamp() for s in rows["started_at"]]
        durations = [float(d) for d in rows["duration_s"]]
        span = max(s + d for s, d in zip(starts, durations, strict=True)) - min(starts)
        setup[str(cell)] = max(0.0, span - sum(durations))
    return setup


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
    history = History(store, package.manifest.name)
    plan: list[PlannedCheck] = []
    for cell in cells:
        start = len(plan)
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
            expected = history.previous_duration(package.manifest.name, cell.id, name)
            setup = history.previous_setup(package.manifest.name, cell.id)
            if force or name in force_validators:
                plan.append(PlannedCheck(cell, name, "run", "forced", key, components, expected_s=expected, setup_s=setup))
                continue
            if components is None:
                plan.append(PlannedCheck(cell, name, "run", f"runtime {cell.runtime.id} not provisioned yet",
                                         None, None, expected_s=expected, setup_s=setup))
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
            plan.append(PlannedCheck(cell, name, "run", reason, key, components, expected_s=expected, setup_s=setup))
        plan[start:] = _load_beside_model_checks(plan[start:], registry, history, package.manifest.name)
    return plan


def _needs_model(cls: type | None) -> bool:
    """The check needs the cell's model loaded (the harness's definition: a probe and `needs_model`)."""
    return cls is not None and bool(getattr(cls, "needs_probe", True) and getattr(cls, "needs_model", True))


def _load_beside_model_checks(checks: list[PlannedCheck], registry: Registry, history: History,
                              model: str) -> list[PlannedCheck]:
    """One cell's plan with a cached `loadability` run again when a check that needs the model runs.

    Otherwise that check would meet a load refusal first and report it again as `<name>.runtime_refused`
    beside the cached `loadability` fail: two fail lines for one root cause. Run together, loadability
    carries the refusal and the others are skipped, blocked by it. The load is shared, so it costs little.
    """
    beside = next((p.validator for p in checks
                   if p.decision == "run" and _needs_model(registry.validators.get(p.validator))), None)
    if beside is None:
        return checks
    return [replace(p, decision="run", reused=None,
                    reason=f"runs beside {beside} so that a load failure has one root cause",
                    expected_s=history.previous_duration(model, p.cell.id, p.validator),
                    setup_s=history.previous_setup(model, p.cell.id))
            if p.validator == "loadability" and p.decision == "cached" else p for p in checks]


def plan_markdown(plan: list[PlannedCheck]) -> str:
    """The plan as a markdown table (a Prefect artifact and `modelcompat plan --markdown`)."""
    counts = {d: sum(1 for p in plan if p.decision == d) for d in ("run", "cached", "skipped")}
    lines = [f"# Plan: {counts['run']} to run, {counts['cached']} cached, {counts['skipped']} skipped", "",
             "| cell | validator | decision | why |", "|---|---|---|---|"]
    for p in plan:
        lines.append(f"| `{p.cell.id}` | {p.validator} | {p.decision} | {p.reason.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
