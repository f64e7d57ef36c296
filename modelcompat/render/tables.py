"""The CLI's terminal tables (rich): a plan, a matrix's cells, the validators, a baseline, a metric's history, a registry.

Each function takes what its command loaded and returns renderables; none reads files or the store.
Tables are `Fitted` (render/fit.py): at any console width no word is cut; names, ids and statuses never wrap.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table

from modelcompat.render.fit import Fitted

if TYPE_CHECKING:
    import pandas as pd

    from modelcompat.baseline.promotion import Promotion
    from modelcompat.matrix.cells import Cell
    from modelcompat.planning.plan import PlannedCheck
    from modelcompat.validators.registry import Registry

DECISION_STYLE = {"run": "bold", "cached": "green", "skipped": "dim"}
HISTORY_SERIES = 6  # columns of a history table; more series are counted, not shown
_SPARK = "▁▂▃▄▅▆▇█"


def plan_table(checks: list[PlannedCheck], title: str) -> Fitted:
    """One row per (cell, validator): its decision and why."""
    table = Table(title=title, title_justify="left")
    table.add_column("cell", no_wrap=True)
    table.add_column("validator", no_wrap=True)
    table.add_column("decision", no_wrap=True)
    table.add_column("why")
    for p in checks:
        table.add_row(p.cell.id, p.validator, f"[{DECISION_STYLE[p.decision]}]{p.decision}[/]", p.reason)
    return Fitted(table)


def plan_counts(checks: list[PlannedCheck]) -> str:
    """`4 run, 0 cached, 0 skipped`."""
    counts = {d: sum(1 for p in checks if p.decision == d) for d in ("run", "cached", "skipped")}
    return ", ".join(f"{v} {k}" for k, v in counts.items())


def cells_table(matrix_name: str, cells: list[Cell]) -> Fitted:
    """A matrix's cells with their runtime, environment, hardware and backend."""
    table = Table(title=f"{matrix_name}: {len(cells)} cells", title_justify="left")
    table.add_column("cell", no_wrap=True)
    for col in ("runtime", "env", "hardware", "backend", "consumes", "precision"):
        table.add_column(col, no_wrap=col != "env")  # env: requirements, one per word
    for c in cells:
        env = "host" if c.runtime.env == "host" else " ".join(c.runtime.requirements)
        table.add_row(c.id, f"{c.runtime.kind}", env, c.hardware.id, c.backend.provider or c.backend.mode or "",
                      c.backend.consumes(), c.backend.precision)
    return Fitted(table)


def validators_table(registry: Registry) -> Fitted:
    """The installed validators, then those that failed to load with the reason."""
    table = Table(title="installed validators", title_justify="left")
    for col in ("name", "version", "inputs", "params", "description"):
        table.add_column(col, no_wrap=col in ("name", "version"))
    for name, cls in registry.validators.items():
        params = ", ".join(cls.Params.model_fields) or "-"
        table.add_row(name, cls.version, ", ".join(cls.inputs), params, cls.description)
    for name, failure in registry.failures.items():
        table.add_row(name, "?", "", "", f"[red]not loadable: {failure.reason}[/red]")
    return Fitted(table)


def baseline_tables(model: str, history: list[Promotion]) -> tuple[Fitted, Fitted]:
    """The current baseline (cell × validator → run, promotions replayed in order) and the promotion log."""
    current: dict[tuple[str, str], tuple[str, str, Promotion]] = {}
    for p in history:
        for cell, validator, status in p.pointers:
            current[(cell, validator)] = (p.run_id, status, p)
    table = Table(title=f"baseline of {model}: {len(current)} checks", title_justify="left")
    for col in ("cell", "validator", "status", "run", "promoted"):
        table.add_column(col, no_wrap=col != "promoted")
    for (cell, validator), (rid, status, p) in sorted(current.items()):
        table.add_row(cell, validator, status, rid, f"{p.promoted_at:%Y-%m-%d %H:%M} by {p.promoted_by}")
    log = Table(title="promotions (oldest first)", title_justify="left")
    for col in ("when", "by", "run", "rule", "checks"):
        log.add_column(col, no_wrap=col != "when")
    for p in history:
        log.add_row(f"{p.promoted_at:%Y-%m-%d %H:%M:%S}", p.promoted_by, p.run_id, p.rule, str(len(p.pointers)))
    return Fitted(table), Fitted(log)


def promotion_line(promotion: Promotion) -> str:
    """What `baseline promote` did, in one line."""
    counts: dict[str, int] = {}
    for _, _, status in promotion.pointers:
        counts[status] = counts.get(status, 0) + 1
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    return (f"promoted run {promotion.run_id} as the baseline of {promotion.model}: "
            f"{len(promotion.pointers)} checks ({statuses}) by {promotion.promoted_by}"
            + (f" (rule {promotion.rule})" if promotion.rule != "manual" else ""))


def sparkline(values: list[float]) -> str:
    """One block character per value, scaled between the smallest and the largest."""
    lo, hi = min(values), max(values)
    if hi - lo <= 0:
        return _SPARK[3] * len(values)
    return "".join(_SPARK[round((v - lo) / (hi - lo) * (len(_SPARK) - 1))] for v in values)


def history_table(model: str, metric: str, frame: pd.DataFrame, baseline_runs: set[str]) -> tuple[Fitted, int]:
    """One row per run (★ the baseline's runs), one column per cell × validator with the change from the
    previous run (red: >10 % up, green: >10 % down), a sparkline row last. Also: how many series were left out.
    """
    series = list(dict.fromkeys(zip(frame["cell"], frame["validator"], frame["metric"], strict=True)))
    shown, hidden = series[:HISTORY_SERIES], len(series) - HISTORY_SERIES
    run_rows = frame.drop_duplicates("run_id")[["run_id", "started_at", "model_version", "verdict"]]
    values = {(r.run_id, r.cell, r.validator, r.metric): r.value for r in frame.itertuples(index=False)}
    table = Table(title=f"{model}: {metric} over {len(run_rows)} runs (★ baseline)", title_justify="left")
    for col in ("run", "started", "version", "verdict"):
        table.add_column(col, no_wrap=True)
    for c, v, m in shown:
        table.add_column(f"{c}\n{v}" + (f"\n{m}" if m != metric else ""), justify="right", no_wrap=True)
    previous: dict[tuple[str, str, str], float] = {}
    for r in run_rows.itertuples(index=False):
        cells_out = []
        for key in shown:
            value = values.get((r.run_id, *key))
            if value is None:
                cells_out.append("-")
                continue
            before = previous.get(key)
            delta = f" ({(value - before) / before * 100:+.0f}%)" if before else ""
            style = "red" if before and value > before * 1.1 else "green" if before and value < before * 0.9 else ""
            cells_out.append(f"[{style}]{value:.4g}{delta}[/{style}]" if style else f"{value:.4g}{delta}")
            previous[key] = value
        mark = " ★" if r.run_id in baseline_runs else ""
        table.add_row(r.run_id + mark, f"{r.started_at:%Y-%m-%d %H:%M}", r.model_version, r.verdict or "", *cells_out)
    trend = [sparkline([values[(rid, *key)] for rid in run_rows["run_id"] if (rid, *key) in values]) for key in shown]
    table.add_section()
    table.add_row("trend", "", "", "", *trend)
    return Fitted(table), max(hidden, 0)


def registry_table(root: Any, models: Iterable[tuple[str, Mapping[str, Any]]]) -> Fitted:
    """Every version of every model (oldest registration first) with its aliases and last verdict."""
    table = Table(title=f"registry {root}", title_justify="left")
    for col in ("model", "version", "aliases", "verdict", "run", "package"):
        table.add_column(col, no_wrap=col != "aliases")
    for name, data in models:
        for version, entry in sorted(data["versions"].items(), key=lambda kv: kv[1].get("registered_at", "")):
            aliases = ", ".join(a for a, v in data["aliases"].items() if v == version)
            table.add_row(name, version, aliases, entry.get("verdict") or "-", entry.get("run_id") or "-",
                          entry.get("package", ""))
    return Fitted(table)
