"""Terminal renderings (rich): the cells × validators matrix table of a run and the findings under it."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelcompat.results.summary import RunSummary

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "bold magenta", "skipped": "dim"}


def matrix_table(summary: RunSummary) -> Table:
    """Rows are cells (with the runtime version seen), columns validators, each cell its status."""
    reports = summary.reports
    validators = list(dict.fromkeys(r.validator for r in reports))
    cells = list(dict.fromkeys(r.cell for r in reports))
    by_key = {(r.cell, r.validator): r for r in reports}
    table = Table(title=f"{summary.model.name} {summary.model.version} × {summary.matrix.name}  "
                        f"verdict: {summary.verdict.value}", title_justify="left")
    table.add_column("cell", no_wrap=True)
    table.add_column("runtime", no_wrap=True)
    for v in validators:
        table.add_column(v, justify="center")
    for cell in cells:
        row_reports = [by_key.get((cell, v)) for v in validators]
        version = next((r.runtime_version for r in row_reports if r and r.runtime_version), "")
        row: list[Text | str] = [cell, version or ""]
        for r in row_reports:
            status = r.status.value if r else "-"
            label = status + (" (cached)" if r and r.cached else "")
            row.append(Text(label, style=STYLE.get(status, "")))
        table.add_row(*row)
    return table


def print_summary(console: Console, summary: RunSummary) -> None:
    """The table, then one line per failing/erroring/warning finding with its remediation."""
    console.print(matrix_table(summary))
    seen_skips: set[str] = set()
    for r in summary.reports:
        status = r.status.value
        for f in r.findings:
            if status == "skipped":
                # One line per distinct skip reason, not per check.
                if f.message not in seen_skips:
                    seen_skips.add(f.message)
                    console.print(f"[dim]skipped {r.cell}: {f.message}[/dim]")
                continue
            if status == "pass":
                continue
            console.print(Text.assemble((f"{status:5} ", STYLE[status]), f"{r.cell} {r.validator} ",
                                        (f.code, "bold"), f": {f.message}"))
            if f.remediation:
                console.print(f"      fix: {f.remediation}", style="cyan")
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
    console.print(f"run {summary.run_id}: {counts} -> verdict [bold]{summary.verdict.value}[/bold]")
