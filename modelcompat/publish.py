"""Renderings of a run for people: a Prefect table artifact and a markdown summary."""
from __future__ import annotations

from typing import Any

from modelcompat.report import Report

_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "error": "💥 error", "skipped": "⏭ skipped"}


def table_rows(reports: list[Report]) -> list[dict[str, str]]:
    """One row per cell, one column per validator, status in each cell."""
    rows: dict[str, dict[str, str]] = {}
    for r in reports:
        row = rows.setdefault(r.cell, {"cell": r.cell, "runtime_version": r.runtime_version or ""})
        row[r.validator] = r.status.value
        if r.runtime_version and not row["runtime_version"]:
            row["runtime_version"] = r.runtime_version
    return list(rows.values())


def markdown_summary(summary: dict[str, Any]) -> str:
    """Verdict first, then every non-passing check with its finding and remediation."""
    model = summary["model"]
    lines = [
        f"# {model['name']} {model['version']}: **{summary['verdict']}**",
        "",
        f"run `{summary['run_id']}` · matrix `{summary['matrix']['name']}` · artifact sha256 `{model['sha256'][:12]}…`",
        "",
        " · ".join(f"{k}: {v}" for k, v in summary["counts"].items() if v),
        "",
    ]
    problems = [r for r in summary["reports"] if r["status"] in ("fail", "error", "warn")]
    if problems:
        lines += ["| cell | validator | status | finding | remediation |", "|---|---|---|---|---|"]
        for r in sorted(problems, key=lambda r: ("fail", "error", "warn").index(r["status"])):
            for f in r["findings"] or [{"code": "", "message": ""}]:
                message = f.get("message", "").replace("|", "\\|").replace("\n", " ")[:300]
                fix = (f.get("remediation") or "").replace("|", "\\|")
                lines.append(f"| `{r['cell']}` | {r['validator']} | {_ICON[r['status']]} | "
                             f"`{f.get('code', '')}` {message} | {fix} |")
    else:
        lines.append("No check failed.")
    return "\n".join(lines) + "\n"
