"""Terminal renderings (rich): the cells × validators matrix of a run, fitted to the console's width, and
the findings under it, each root cause once per cell with the checks it blocked.

The matrix takes the first layout that fits: the full table (status words), then a compact table
(status glyphs, two-letter validator keys, a legend), then one block per cell. Nothing is cut.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from modelcompat.results.report import Severity
from modelcompat.results.summary import RunSummary, SummaryReport

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "bold magenta", "skipped": "dim"}
GLYPHS = {"pass": "✓", "warn": "!", "fail": "✗", "error": "E", "skipped": "-"}
ASCII_GLYPHS = {"pass": "+", "warn": "!", "fail": "x", "error": "E", "skipped": "-"}  # consoles without UTF-8
CACHED = "*"     # after a glyph: the report was reused from an earlier run
NOT_CHECKED = "."  # no report for this cell and validator
_UNBOUNDED = 100_000
BLOCKED_PREFIX = "blocked by "  # the message of a `<name>.blocked` finding (execution.harness, gates)


def _glyphs(console: Console) -> dict[str, str]:
    return GLYPHS if console.encoding.lower().startswith("utf") else ASCII_GLYPHS


def short_names(validators: Sequence[str]) -> dict[str, str]:
    """A distinct key of two (or, on a clash, more) letters per validator: the initials of its words
    (`io_contract` -> `ic`), or the first two letters of a one-word name (`latency` -> `la`)."""
    keys: dict[str, str] = {}
    for name in validators:
        words = [w for w in name.replace("-", "_").split("_") if w]
        candidates = ["".join(w[0] for w in words)] if len(words) > 1 else []
        flat = "".join(words) or name
        candidates += [flat[:n] for n in range(2, len(flat) + 1)]
        taken = set(keys.values())
        keys[name] = next((c for c in candidates if len(c) >= 2 and c not in taken), name)
    return keys


@dataclass(frozen=True)
class _Matrix:
    title: str
    cells: list[str]
    validators: list[str]
    by_key: dict[tuple[str, str], SummaryReport]
    versions: dict[str, str]

    @classmethod
    def of(cls, summary: RunSummary) -> _Matrix:
        reports = summary.reports
        cells = list(dict.fromkeys(r.cell for r in reports))
        versions = {c: next((r.runtime_version for r in reports if r.cell == c and r.runtime_version), "") or ""
                    for c in cells}
        return cls(title=f"{summary.model.name} {summary.model.version} × {summary.matrix.name}  "
                         f"verdict: {summary.verdict.value}",
                   cells=cells, validators=list(dict.fromkeys(r.validator for r in reports)),
                   by_key={(r.cell, r.validator): r for r in reports}, versions=versions)


def matrix_table(summary: RunSummary) -> Table:
    """The full table: rows are cells (with the runtime version seen), columns validators, status words."""
    m = _Matrix.of(summary)
    table = Table(title=m.title, title_justify="left")
    table.add_column("cell", no_wrap=True)
    table.add_column("runtime", no_wrap=True)
    for v in m.validators:
        table.add_column(v, justify="center", no_wrap=True)
    for cell in m.cells:
        row: list[Text | str] = [cell, m.versions[cell]]
        for v in m.validators:
            r = m.by_key.get((cell, v))
            status = r.status.value if r else "-"
            row.append(Text(status + (" (cached)" if r and r.cached else ""), style=STYLE.get(status, "")))
        table.add_row(*row)
    return table


def compact_table(summary: RunSummary, *, runtime: bool = True, glyphs: dict[str, str] = GLYPHS) -> Table:
    """Status glyphs under two-letter validator keys, columns one space apart (see `legend`)."""
    m = _Matrix.of(summary)
    keys = short_names(m.validators)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("cell", no_wrap=True)
    if runtime:
        table.add_column("runtime", no_wrap=True)
    for v in m.validators:
        table.add_column(keys[v], justify="center", no_wrap=True)
    for cell in m.cells:
        row: list[Text | str] = [cell] + ([m.versions[cell]] if runtime else [])
        for v in m.validators:
            r = m.by_key.get((cell, v))
            if r is None:
                row.append(Text(NOT_CHECKED, style="dim"))
                continue
            status = r.status.value
            row.append(Text(glyphs[status] + (CACHED if r.cached else ""), style=STYLE[status]))
        table.add_row(*row)
    return table


def _pack(entries: Iterable[Text], width: int, indent: str = "") -> list[Text]:
    """Entries joined by two spaces into lines of at most `width` (an entry is never split)."""
    lines: list[Text] = []
    line = Text(indent)
    for entry in entries:
        if line.cell_len > len(indent) and line.cell_len + 2 + entry.cell_len > width:
            lines.append(line)
            line = Text(indent)
        if line.cell_len > len(indent):
            line.append("  ")
        line.append_text(entry)
    if line.cell_len > len(indent):
        lines.append(line)
    return lines


def legend(summary: RunSummary, width: int, glyphs: dict[str, str] = GLYPHS) -> list[Text]:
    """What the compact layouts' glyphs and keys mean, packed to `width`."""
    m = _Matrix.of(summary)
    keys = short_names(m.validators)
    marks = [Text.assemble((glyphs[s], STYLE[s]), f" {s}") for s in GLYPHS]
    marks += [Text(f"{CACHED} cached"), Text(f"{NOT_CHECKED} not checked")]
    return _pack(marks, width) + _pack((Text.assemble((keys[v], "bold"), f" {v}") for v in m.validators), width)


def cell_blocks(summary: RunSummary, width: int, glyphs: dict[str, str] = GLYPHS) -> list[Text]:
    """One block per cell: its id and runtime version, then `<glyph> <validator>` entries packed to `width`."""
    m = _Matrix.of(summary)
    lines: list[Text] = []
    for cell in m.cells:
        version = m.versions[cell]
        if version and len(cell) + 2 + len(version) <= width:
            lines.append(Text.assemble((cell, "bold"), f"  {version}"))
        else:
            lines += [Text(cell, style="bold")] + ([Text(f"  {version}")] if version else [])
        entries = []
        for v in m.validators:
            r = m.by_key.get((cell, v))
            if r is None:
                entries.append(Text(f"{NOT_CHECKED} {v}", style="dim"))
            else:
                status = r.status.value
                entries.append(Text.assemble((glyphs[status] + (CACHED if r.cached else ""), STYLE[status]),
                                             f" {v}"))
        lines += _pack(entries, width, indent="  ")
    return lines


def _fits(console: Console, table: Table, width: int) -> bool:
    """Whether the table's natural width (measured unconstrained: rich clamps to the space offered) fits."""
    return Measurement.get(console, console.options.update(width=_UNBOUNDED), table).maximum <= width


def matrix_view(console: Console, summary: RunSummary) -> list[RenderableType]:
    """The matrix laid out for `console.width`: the first of full table, compact table (with, then without
    the runtime column) and per-cell blocks that fits; compact layouts are followed by their legend."""
    width = console.width
    glyphs = _glyphs(console)
    title = Text(_Matrix.of(summary).title.replace("×", "×" if glyphs is GLYPHS else "x"), style="bold")
    full = matrix_table(summary)
    full.title = None
    if _fits(console, full, width):
        return [title, full]
    for runtime in (True, False):
        table = compact_table(summary, runtime=runtime, glyphs=glyphs)
        if _fits(console, table, width):
            return [title, table, *legend(summary, width, glyphs)]
    return [title, *cell_blocks(summary, width, glyphs), *legend(summary, width, glyphs)]


def blocker(report: SummaryReport) -> str | None:
    """What a `skipped` check was blocked by (a finding code, or a gate's name), else None."""
    for f in report.findings:
        if f.code.endswith(".blocked") and f.message.startswith(BLOCKED_PREFIX):
            return f.message[len(BLOCKED_PREFIX):].split(":", 1)[0].strip()
    return None


def _problem_lines(console: Console, summary: RunSummary) -> None:
    """Per cell: each distinct problem once (the validators that reported it named together), its fix, and the
    checks its root cause blocked; then each distinct skip reason once for the run."""
    cells = list(dict.fromkeys(r.cell for r in summary.reports))
    seen_skips: set[str] = set()
    for cell in cells:
        reports = [r for r in summary.reports if r.cell == cell]
        blocked: dict[str, list[str]] = {}
        for r in reports:
            by = blocker(r) if r.status.value == "skipped" else None
            if by:
                blocked.setdefault(by, []).append(r.validator)
        problems: dict[tuple[str, str, str, str | None], list[str]] = {}
        for r in reports:
            if r.status.value in ("pass", "skipped"):
                continue
            for f in r.findings:
                if f.severity == Severity.INFO:
                    continue
                problems.setdefault((r.status.value, f.code, f.message, f.remediation), []).append(r.validator)
        shown: set[str] = set()
        for (status, code, message, remediation), validators in problems.items():
            console.print(Text.assemble((f"{status:5} ", STYLE[status]), f"{cell} {', '.join(validators)} ",
                                        (code, "bold"), f": {message}"))
            if remediation:
                console.print(f"      fix: {remediation}", style="cyan", markup=False, highlight=False)
            for key in (code, *validators):
                if key in blocked and key not in shown:
                    shown.add(key)
                    console.print(f"      blocks (skipped): {', '.join(blocked[key])}", style="dim",
                                  markup=False, highlight=False)
        for r in reports:
            if r.status.value != "skipped":
                continue
            by = blocker(r)
            if by in shown:
                continue
            for f in r.findings:
                # One line per distinct skip reason, not per check.
                if f.message not in seen_skips:
                    seen_skips.add(f.message)
                    console.print(f"skipped {cell}: {f.message}", style="dim", markup=False, highlight=False)


def print_summary(console: Console, summary: RunSummary) -> None:
    """The matrix (fitted to the console), then the findings, then the counts and verdict."""
    for renderable in matrix_view(console, summary):
        console.print(renderable)
    _problem_lines(console, summary)
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
    console.print(f"run {summary.run_id}: {counts} -> verdict [bold]{summary.verdict.value}[/bold]")
