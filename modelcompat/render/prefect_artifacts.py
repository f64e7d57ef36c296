"""Renderings of a run for people: a Prefect table artifact and a markdown summary."""
from __future__ import annotations

from modelcompat.results.report import Report
from modelcompat.results.summary import RunSummary

_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "error": "💥 error", "skipped": "⏭ skipped"}
_PROBLEMS = ("fail", "error", "warn")


def artifact_key(model_name: str) -> str:
    """The key of a model's artifacts (`compat-<model>`, `-plan`, `-summary`): Prefect artifact keys allow
    lowercase letters, digits and dashes."""
    return "compat-" + "".join(ch if ch.isalnum() else "-" for ch in model_name.lower())


def table_rows(reports: list[Report]) -> list[dict[str, str]]:
    """One row per cell, one column per validator, status in each cell."""
    rows: dict[str, dict[str, str]] = {}
    for r in reports:
        row = rows.setdefault(r.cell, {"cell": r.cell, "runtime_version": r.runtime_version or ""})
        row[r.validator] = r.status.value
        if r.runtime_version and not row["runtime_version"]:
            row["runtime_version"] = r.runtime_version
    return list(rows.values())


def markdown_summary(summary: RunSummary) -> str:
    """Verdict first, then every non-passing check with its finding and remediation."""
    model = summary.model
    lines = [
        f"# {model.name} {model.version}: **{summary.verdict.value}**",
        "",
        f"run `{summary.run_id}` · matrix `{summary.matrix.name}` · artifact sha256 `{model.sha256[:12]}…`",
        "",
        " · ".join(f"{k}: {v}" for k, v in summary.counts.items() if v),
        "",
    ]
    lines += regressions_markdown(summary)
    problems = [r for r in summary.reports if r.status.value in _PROBLEMS]
    if problems:
        lines += ["| cell | validator | status | finding | remediation |", "|---|---|---|---|---|"]
        for r in sorted(problems, key=lambda r: _PROBLEMS.index(r.status.value)):
            findings = [(f.code, f.message, f.remediation) for f in r.findings] or [("", "", None)]
            for code, message, remediation in findings:
                message = message.replace("|", "\\|").replace("\n", " ")[:300]
                fix = (remediation or "").replace("|", "\\|")
                lines.append(f"| `{r.cell}` | {r.validator} | {_ICON[r.status.value]} | "
                             f"`{code}` {message} | {fix} |")
    else:
        lines.append("No check failed.")
    return "\n".join(lines) + "\n"


_SEVERITY_ICON = {"critical": "🟥 critical", "major": "🟧 major", "minor": "🟨 minor", "info": "info"}
_SEVERITY_ORDER = ("critical", "major", "minor", "info")


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def regressions_markdown(summary: RunSummary) -> list[str]:
    """The regressions against the baseline, most severe first, each with its remediation."""
    regressions = summary.regressions
    baseline = summary.baseline_run_id
    if not baseline:
        return ["No baseline for this model yet: promote a run with `modelcompat baseline promote RUN_ID`.", ""]
    if not regressions:
        return [f"No regression against baseline run `{baseline}`.", ""]
    lines = [f"## {len(regressions)} regression(s) against baseline run `{baseline}`", "",
             "| severity | cell | validator | change | remediation |", "|---|---|---|---|---|"]
    for r in sorted(regressions, key=lambda r: _SEVERITY_ORDER.index(r.severity)):
        if r.kind == "status":
            what = f"{r.from_} → {r.to}"
        else:
            delta = f" ({r.delta_pct:+.1f}%)" if r.delta_pct is not None else ""
            what = f"`{r.metric}` {_fmt(r.from_)} → {_fmt(r.to)}{delta}"
        if r.note:
            what += f"<br>{r.note}".replace("|", "\\|")
        fix = (r.remediation or "").replace("|", "\\|")
        lines.append(f"| {_SEVERITY_ICON[r.severity]} | `{r.cell}` | {r.validator} | {what} | {fix} |")
    return lines + [""]
