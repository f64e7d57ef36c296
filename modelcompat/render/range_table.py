"""A stored range for people: the terminal table (one row per probed release) and the report's HTML rows."""
from __future__ import annotations

from html import escape

from packaging.version import Version
from rich.markup import escape as escape_markup
from rich.table import Table

from modelcompat.ranges.records import RangeRecord
from modelcompat.render.fit import Fitted

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "magenta", "skipped": "dim"}


def probes_table(record: RangeRecord) -> Fitted:
    """Every probed release, oldest first: its status, whether a stored probe answered, and its first finding."""
    table = Table(title=f"{record.model} on {record.runtime} ({record.hardware}/{record.backend}): "
                        f"{len(record.probes)} of {len(record.releases)} releases probed", title_justify="left")
    for column in ("release", "status", "probe", "in range", "finding"):
        table.add_column(column, no_wrap=column != "finding")
    passing = set(record.passing())
    for probe in sorted(record.probes, key=lambda p: Version(p["release"])):
        status = probe["status"]
        table.add_row(probe["release"], f"[{STATUS_STYLE.get(status, 'default')}]{escape_markup(status)}[/]",
                      "stored" if probe.get("reused") else "run", "yes" if probe["release"] in passing else "no",
                      probe.get("finding") or "")
    return Fitted(table)


def html_rows(records: list[RangeRecord]) -> str:
    """An HTML table of ranges (one per runtime, hardware, backend), with each boundary's finding."""
    if not records:
        return ""
    rows = []
    for r in records:
        bounds = "<br>".join(escape(f"{b['side']}: {b['release']} ({b['status']}) {b.get('finding') or ''}")
                             for b in r.boundaries) or "none"
        rows.append(f"<tr><td>{escape(r.runtime)}</td><td>{escape(r.hardware)}/{escape(r.backend)}</td>"
                    f"<td><code>{escape(r.line())}</code></td><td>{bounds}</td>"
                    f"<td>{escape(r.created_at[:19])}</td></tr>")
    return ("<table class=\"ranges\"><thead><tr><th>runtime</th><th>cell</th><th>range</th><th>boundaries</th>"
            "<th>found</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
