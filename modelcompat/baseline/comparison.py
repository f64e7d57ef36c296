"""Compare a run's reports with its model's baseline: status transitions and metric deltas, graded.

The rules (status transitions, metric directions and thresholds, the noise rule, the verdict) are
tables below and in docs/run-summary.md ("Comparison with the baseline"). Vectorised over pandas:
only the run's reports and the baseline's runs are read, never the whole store.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from modelcompat.baseline.promotion import baseline_frame
from modelcompat.results.report import Report
from modelcompat.store import REPORTS_SCHEMA, Store, report_to_row

SEVERITIES = ("info", "minor", "major", "critical")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
BLOCK_AT = "minor"  # a regression at or above this severity makes the verdict `regressed`

# (baseline status, run status) → (what it is, severity). Pairs not listed (same status) are no change.
# Anything to or from `skipped` is coverage, not quality: info. fail ↔ error: the run's own verdict says it.
TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("pass", "warn"): ("regression", "minor"),
    ("pass", "fail"): ("regression", "critical"),
    ("warn", "fail"): ("regression", "critical"),
    ("pass", "error"): ("regression", "major"),
    ("warn", "error"): ("regression", "major"),
    ("warn", "pass"): ("fix", "info"),
    ("fail", "pass"): ("fix", "info"),
    ("fail", "warn"): ("fix", "info"),
    ("error", "pass"): ("fix", "info"),
    ("error", "warn"): ("fix", "info"),
    ("fail", "error"): ("change", "info"),
    ("error", "fail"): ("change", "info"),
    **{(s, "skipped"): ("change", "info") for s in ("pass", "warn", "fail", "error")},
    **{("skipped", s): ("change", "info") for s in ("pass", "warn", "fail", "error")},
}


@dataclass(frozen=True)
class MetricRule:
    """How one metric is judged.

    ``relative``: worsening in % of the baseline (``warn``/``fail`` are percentages).
    ``ratio``: new / baseline, both first raised to ``floor`` (``warn``/``fail`` are factors), so
    that growth among values too small to matter (1e-9 → 3e-9) is no change.
    ``floor`` (relative rules): an absolute change at or below it is no change (timer resolution, page size).
    ``noisy``: latency-like; the thresholds are raised to the measurements' combined precision, or for
    reports without precision metrics to the measured noise (``NOISE_K`` × cv, see :func:`_precision`).
    """

    pattern: str
    direction: str  # "lower" or "higher" is better
    kind: str  # "relative" or "ratio"
    warn: float
    fail: float
    floor: float = 0.0
    noisy: bool = False


# First match wins: exact names before globs.
METRIC_RULES: tuple[MetricRule, ...] = (
    MetricRule("load_time_ms", "lower", "relative", 25, 100, floor=1.0),
    MetricRule("*_latency_ms", "lower", "relative", 10, 25, floor=0.05, noisy=True),
    MetricRule("throughput_per_s*", "higher", "relative", 10, 25, noisy=True),
    MetricRule("max_abs_diff", "lower", "ratio", 2, 10, floor=1e-6),
    MetricRule("mean_abs_diff", "lower", "ratio", 2, 10, floor=1e-6),
    MetricRule("max_rel_diff", "lower", "ratio", 2, 10, floor=1e-4),
    MetricRule("peak_rss_mb", "lower", "relative", 10, 25, floor=1.0),
    MetricRule("*_memory_mb", "lower", "relative", 10, 25, floor=1.0),
)
NOISE_K = 3.0  # old reports (no precision metrics): a latency delta must exceed NOISE_K × cv to count
# What a timed figure was measured on: the CPUs the probe could use and the runtime's intra-op threads. A latency
# taken on one core of a worker's share is not the one taken on the whole machine (partitioned vs exclusive timing,
# another worker count, a re-pinned remote worker): such figures are reported as a change, never a regression.
CONDITIONS = ("cores", "intra_op_threads")


def rule_for(metric: str) -> MetricRule | None:
    """The rule judging ``metric``, or None (the metric is not compared)."""
    return next((r for r in METRIC_RULES if fnmatch.fnmatchcase(metric, r.pattern)), None)


@dataclass(frozen=True)
class Change:
    """One difference between a run and its baseline, for one (cell, validator)."""

    cell: str
    validator: str
    kind: str  # "status" | "metric"
    change: str  # regression | fix | improvement | change | new | removed
    severity: str  # info | minor | major | critical
    from_: Any = None
    to: Any = None
    metric: str | None = None
    delta_pct: float | None = None
    baseline_run_id: str | None = None
    remediation: str | None = None
    note: str | None = None

    @property
    def is_regression(self) -> bool:
        return self.change == "regression"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("from_")
        if data["delta_pct"] is not None:
            data["delta_pct"] = round(float(data["delta_pct"]), 2)
        return data


@dataclass
class Comparison:
    """Every change of a run against its baseline; the regressions are those with ``change == regression``."""

    baseline_run_id: str | None = None
    baseline_run_ids: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.is_regression]

    def blocking(self, block_at: str = BLOCK_AT) -> list[Change]:
        return [c for c in self.regressions if _RANK[c.severity] >= _RANK[block_at]]

    def verdict(self, run_verdict: str, block_at: str = BLOCK_AT) -> str:
        """The final verdict: the run's own `fail`/`error` first, else `regressed` on a blocking regression."""
        if run_verdict in ("fail", "error"):
            return run_verdict
        return "regressed" if self.blocking(block_at) else run_verdict


# ------------------------------------------------------------------------------ frames

_COLUMNS = ("cell", "validator", "status", "metrics", "run_id", "runtime_version", "validator_version",
            "artifact_sha256", "environment_fingerprint", "findings")


def reports_frame(reports: Sequence[Report]) -> pd.DataFrame:
    """The columns comparison needs, from Report models (the flow's in-memory run), as the store shapes them."""
    return pd.DataFrame([report_to_row(r) for r in reports], columns=list(REPORTS_SCHEMA.names))[list(_COLUMNS)]


def _records(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    # Whole columns to lists once: per-row pandas access costs more than the comparison itself.
    columns = {c: frame[c].tolist() for c in _COLUMNS}
    rows = (dict(zip(_COLUMNS, values, strict=True)) for values in zip(*columns.values(), strict=True))
    return {(r["cell"], r["validator"]): r for r in rows}


def _cv(metrics: dict[str, float] | None) -> float:
    """The latency coefficient of variation of a report: measured, or estimated from p50/p95, or nan."""
    if not metrics:
        return np.nan
    if metrics.get("latency_cv") is not None:
        return float(metrics["latency_cv"])
    p50, p95 = metrics.get("p50_latency_ms"), metrics.get("p95_latency_ms")
    if p50 and p95 is not None and p50 > 0:
        return max(0.0, (p95 - p50) / (1.645 * p50))  # normal: p95 − p50 = 1.645 σ
    return np.nan


_THROUGHPUT_LEVEL = re.compile(r"throughput_per_s_c(\d+)")


def _precision(metrics: dict[str, float] | None, name: str) -> tuple[bool, float] | None:
    """How precisely a report measured noisy metric ``name``: (reached its target, half-width in %);
    None for a report from before latency measured to a precision (no ``precision_reached``).

    A metric whose precision is unknown (no bound yet, e.g. p99 from a hundred runs) counts as not reached.
    """
    if not metrics or "precision_reached" not in metrics:
        return None
    level = _THROUGHPUT_LEVEL.fullmatch(name)
    if level:
        flag = metrics.get(f"throughput_c{level.group(1)}_precision_reached")
        pct = metrics.get(f"throughput_c{level.group(1)}_precision_pct")
    else:
        flag, pct = metrics.get("precision_reached"), metrics.get(f"{name}_precision_pct")
    if pct is None or pct != pct:  # NaN: a missing value in a stored row
        return False, float("nan")
    return bool(flag is not None and flag >= 0.5), float(pct)


# ------------------------------------------------------------------------------ comparing


def compare_frames(run: pd.DataFrame, baseline: pd.DataFrame) -> Comparison:
    """Compare two report frames (columns as :func:`reports_frame` / `Store.reports()`).

    A run holds hundreds of reports, not 100,000: the join is a dict lookup per report and the metric
    rules are numpy over every (check, metric) pair at once.
    """
    comparison = Comparison()
    if baseline.empty:
        return comparison
    base_ids = baseline["run_id"].value_counts()
    comparison.baseline_run_ids = sorted(base_ids.index)
    comparison.baseline_run_id = str(base_ids.index[0])  # the run most pointers point at
    new, old = _records(run), _records(baseline)
    changes: list[Change] = []
    matched: list[SimpleNamespace] = []
    for key, r in new.items():
        b = old.get(key)
        if b is None:
            changes.append(Change(r["cell"], r["validator"], "status", "new", "info", None, r["status"],
                                  note="no baseline for this check yet"))
            continue
        row = SimpleNamespace(**r, **{k + "_base": v for k, v in b.items()})
        matched.append(row)
        if row.status != row.status_base:
            what, severity = TRANSITIONS.get((row.status_base, row.status), ("change", "info"))
            changes.append(Change(row.cell, row.validator, "status", what, severity, row.status_base, row.status,
                                  baseline_run_id=row.run_id_base,
                                  remediation=_status_remedy(row) if what == "regression" else None,
                                  note=_what_changed(row)))
    for key, b in old.items():
        if key not in new:
            changes.append(Change(b["cell"], b["validator"], "status", "removed", "info", b["status"], None,
                                  baseline_run_id=b["run_id"], note="in the baseline, not in this run"))
    # metrics: only where both ran (an error or skipped report has no meaningful metrics)
    quiet = ("error", "skipped")
    changes += _metric_changes([m for m in matched if m.status not in quiet and m.status_base not in quiet])
    order = {"regression": 0, "fix": 1, "improvement": 2, "change": 3, "new": 4, "removed": 5}
    changes.sort(key=lambda c: (order[c.change], -_RANK[c.severity], c.cell, c.validator, c.metric or ""))
    comparison.changes = changes
    return comparison


_RULE_CACHE: dict[str, MetricRule | None] = {}


def _metric_changes(matched: list[SimpleNamespace]) -> list[Change]:
    rows, names, values, bases, cvs, precise, unstable = [], [], [], [], [], [], []
    for row in matched:
        new_m, old_m = row.metrics or {}, row.metrics_base or {}
        cv = np.fmax(_cv(new_m), _cv(old_m))
        other_conditions = bool(_conditions_differ(new_m, old_m))  # once per check, not per metric
        for name, value in new_m.items():
            if name not in old_m:
                continue
            if name not in _RULE_CACHE:
                _RULE_CACHE[name] = rule_for(name)
            if _RULE_CACHE[name] is None:
                continue
            rows.append(row)
            names.append(name)
            values.append(value)
            bases.append(old_m[name])
            cvs.append(cv)
            if _RULE_CACHE[name].noisy and other_conditions:
                unstable.append(True)  # reported as a change with the conditions named, never a regression
                precise.append(np.nan)
                continue
            # Measured to a precision on both sides: the delta must exceed the two half-widths combined
            # (root sum of squares: the half-width of the difference). Either side short of its target:
            # an unstable measurement, never a regression. Neither side has precision metrics: the cv rule.
            sides = (_precision(new_m, name), _precision(old_m, name)) if _RULE_CACHE[name].noisy else (None, None)
            known = [side for side in sides if side is not None]
            unstable.append(any(not reached for reached, _ in known))
            precise.append(float(np.hypot(sides[0][1], sides[1][1])) if len(known) == 2 and not unstable[-1]
                           else np.nan)
    if not rows:
        return []
    rules = [_RULE_CACHE[n] for n in names]
    direction = np.array([1.0 if r.direction == "lower" else -1.0 for r in rules])
    ratio_kind = np.array([r.kind == "ratio" for r in rules])
    warn = np.array([r.warn for r in rules], dtype=np.float64)
    fail = np.array([r.fail for r in rules], dtype=np.float64)
    floor = np.array([r.floor for r in rules], dtype=np.float64)
    noisy = np.array([r.noisy for r in rules])
    value, base = np.array(values, dtype=np.float64), np.array(bases, dtype=np.float64)

    with np.errstate(divide="ignore", invalid="ignore"):
        delta_pct = np.where(base != 0, (value - base) / np.abs(base) * 100.0, np.nan)
        # worse > 0: the metric moved the wrong way, in % (relative rules) …
        moved = np.abs(value - base) > floor
        worse_rel = np.where(moved, direction * delta_pct, 0.0)
        worse_rel = np.where(moved & (base == 0), np.sign(direction * (value - base)) * np.inf, worse_rel)
        # … or as a growth factor after raising both values to the floor (ratio rules)
        lifted_new, lifted_base = np.maximum(value, floor), np.maximum(base, floor)
        factor = np.where(direction > 0, lifted_new / lifted_base, lifted_base / lifted_new)
        better = np.where(ratio_kind, 1.0 / factor, -worse_rel)

    # noise: the two measurements' combined precision (in %) where both have one, else the larger cv of the
    # two reports × NOISE_K, as a % of the baseline value
    precise_pct = np.array(precise, dtype=np.float64)
    unstable_ = np.array(unstable, dtype=bool)
    cv_pct = NOISE_K * np.array(cvs, dtype=np.float64) * 100.0
    noise_pct = np.nan_to_num(np.where(noisy, np.where(np.isnan(precise_pct), cv_pct, precise_pct), 0.0), nan=0.0)
    noise_pct = np.where(unstable_, 0.0, noise_pct)
    warn_eff = np.where(ratio_kind, warn, np.maximum(warn, noise_pct))
    fail_eff = np.where(ratio_kind, fail, np.maximum(fail, noise_pct))
    score = np.where(ratio_kind, factor, worse_rel)
    severity = np.select([score > fail_eff, score > warn_eff], ["major", "minor"], default="")
    improved = (severity == "") & (better > warn_eff)

    out: list[Change] = []
    for j in np.flatnonzero((severity != "") | improved):
        row, name, rule = rows[j], names[j], rules[j]
        unit = "×" if rule.kind == "ratio" else "%"
        note = (f"{name} {base[j]:.6g} → {value[j]:.6g}; warn > {warn_eff[j]:.3g}{unit}, "
                f"fail > {fail_eff[j]:.3g}{unit}" + (f" (combined precision ±{noise_pct[j]:.3g}%)" if not np.isnan(precise_pct[j])
                   else f" (noise {noise_pct[j]:.3g}%)" if noise_pct[j] else ""))
        d = None if np.isnan(delta_pct[j]) else float(delta_pct[j])
        if unstable_[j]:
            out.append(Change(row.cell, row.validator, "metric", "change", "info", float(base[j]), float(value[j]),
                              name, d, baseline_run_id=row.run_id_base, note=_unstable_note(row, name, base[j],
                                                                                            value[j])))
            continue
        regression = bool(severity[j])
        out.append(Change(row.cell, row.validator, "metric", "regression" if regression else "improvement",
                          str(severity[j]) if regression else "info", float(base[j]), float(value[j]), name, d,
                          baseline_run_id=row.run_id_base, note=note,
                          remediation=_metric_remedy(name, rule) if regression else None))
    return out


def _conditions_differ(new: dict[str, float], old: dict[str, float]) -> list[str]:
    """The measurement conditions (CONDITIONS) both reports state and that differ, as `cores 2 → 1`."""
    return [f"{key} {old[key]:g} → {new[key]:g}" for key in CONDITIONS
            if new.get(key) is not None and old.get(key) is not None and new[key] == new[key]
            and old[key] == old[key] and new[key] != old[key]]


def _unstable_note(row: Any, name: str, base: float, value: float) -> str:
    conditions = _conditions_differ(row.metrics or {}, row.metrics_base or {})
    if conditions:
        return (f"measured under other conditions, not compared: {name} {base:.6g} → {value:.6g} with "
                f"{', '.join(conditions)} (timing mode, worker count or the worker's cores changed); promote a run "
                "measured this way as the baseline to compare its figures again")
    def side(metrics: dict[str, float] | None) -> str:
        precision = _precision(metrics, name)
        if precision is None:
            return "not measured to a precision"
        reached, pct = precision
        if pct != pct:
            return "no precision bound (too few runs)"
        return f"±{pct:.3g} %" + ("" if reached else " (target not reached)")
    return (f"unstable measurement, not a regression: {name} {base:.6g} → {value:.6g}; precision: this run "
            f"{side(row.metrics)}, baseline {side(row.metrics_base)}; re-run with a larger latency "
            "time_budget_s or on a quieter worker")


def _what_changed(row: Any) -> str | None:
    parts = []
    for col, label in (("runtime_version", "runtime"), ("validator_version", "validator version"),
                       ("artifact_sha256", "artifact"), ("environment_fingerprint", "environment")):
        a, b = getattr(row, col + "_base"), getattr(row, col)
        if a != b and not (pd.isna(a) and pd.isna(b)):
            shorten = col in ("artifact_sha256", "environment_fingerprint")
            a_, b_ = ((str(x)[:12] if isinstance(x, str) else x) for x in (a, b)) if shorten else (a, b)
            parts.append(f"{label} {a_} → {b_}")
    return "; ".join(parts) or None


def _status_remedy(row: Any) -> str:
    for f in row.findings if isinstance(row.findings, (list, tuple, np.ndarray)) else ():
        if f.get("remediation") and f.get("severity") in ("error", "warn"):
            return str(f["remediation"])
    return (f"was {row.status_base} in baseline run {row.run_id_base}: compare with "
            f"`modelcompat report {row.run_id_base}`; if the change is intended, promote this run")


_METRIC_ADVICE = {
    "latency": "profile the cell (runtime version, execution provider, threads); re-run to rule out a noisy host",
    "memory": "check the runtime's arena/memory-pattern options and the batch size",
    "parity": "check precision, runtime version and graph optimisations against the reference outputs",
    "load": "check the runtime version and graph optimisation level; a cold cache can also explain it",
}


def _metric_remedy(metric: str, rule: MetricRule) -> str:
    kind = ("parity" if metric.endswith("_diff") else "memory" if metric.endswith("_mb")
            else "load" if metric.startswith("load") else "latency")
    return _METRIC_ADVICE[kind] + "; if accepted, promote this run (`modelcompat baseline promote RUN_ID`)"


# ------------------------------------------------------------------------------ entry points


def compare_reports(store: Store, model: str, reports: Sequence[Report], *,
                    as_of: datetime | None = None) -> Comparison:
    """Compare in-memory reports (a run not yet appended) with ``model``'s baseline as of ``as_of``."""
    return compare_frames(reports_frame(reports), baseline_frame(store, model, as_of=as_of))


def compare_run(store: Store, run_id: str, *, as_of: datetime | None = None) -> Comparison:
    """Compare a committed run with its model's baseline as it was when the run finished.

    The flow compares just before it appends the run, so ``as_of = finished_at`` reproduces the
    comparison it made. Reads the run's two files, the promotions, and one file per baseline run.
    """
    record = store.require_run(run_id)  # RunNotFoundError names the store and the recent runs
    run = store.reports(run_id)
    baseline = baseline_frame(store, record.model_name, as_of=as_of or record.finished_at)
    return compare_frames(run, baseline)
