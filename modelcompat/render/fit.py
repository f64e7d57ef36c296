"""Tables that fit the console without cutting a word: columns sized from their longest word up, else one
record per row.

rich shrinks an over-wide table by folding its widest columns, mid-word and with `…`, even when every word
would fit; `Fitted` sizes the columns itself at render time instead.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

_UNBOUNDED = 100_000


class Fitted:
    """A rich `Table` laid out for the width it is rendered at.

    Every column gets at least its longest word (a `no_wrap` column: its longest line); the room left goes to
    the columns that wrap, in proportion to what they would still take. When even that does not fit, each
    row is printed as a record: its first column, then `header: value` lines.
    """

    def __init__(self, table: Table) -> None:
        self.table = table

    @property
    def columns(self):  # the wrapped table's, for callers that inspect them
        return self.table.columns

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        widths = column_widths(console, self.table, width)
        if widths is None:
            yield from records(self.table, width)
            return
        table = copy.copy(self.table)
        table.columns = [copy.copy(c) for c in self.table.columns]
        for column, w in zip(table.columns, widths, strict=True):
            column.width = w
        yield table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)


def _cell_range(console: Console, options: ConsoleOptions, renderables: Iterable[RenderableType],
                no_wrap: bool) -> tuple[int, int]:
    lo = hi = 1
    for renderable in renderables:
        m = Measurement.get(console, options, renderable)
        hi = max(hi, m.maximum)
        lo = max(lo, m.maximum if no_wrap else m.minimum)
    return lo, hi


def column_widths(console: Console, table: Table, width: int) -> list[int] | None:
    """Content widths for the table's columns at `width`, or None when the longest words do not fit."""
    options = console.options.update(width=_UNBOUNDED)
    ranges = [_cell_range(console, options, [column.header, *column.cells], column.no_wrap)
              for column in table.columns]
    natural = Measurement.get(console, options, table).maximum
    overhead = natural - sum(hi for _, hi in ranges)  # borders and padding
    room = width - overhead
    lows = [lo for lo, _ in ranges]
    if sum(lows) > room:
        return None
    highs = [hi for _, hi in ranges]
    if sum(highs) <= room:
        return highs
    extra, slack = room - sum(lows), [hi - lo for lo, hi in ranges]
    total = sum(slack)
    widths = [lo + (extra * s) // total for lo, s in zip(lows, slack, strict=True)]
    # hand out what integer division left, one column at a time, to those that still want it
    left = room - sum(widths)
    for i in sorted(range(len(widths)), key=lambda i: -slack[i]):
        if left <= 0:
            break
        if widths[i] < highs[i]:
            widths[i] += 1
            left -= 1
    return widths


def records(table: Table, width: int = 80) -> list[RenderableType]:
    """Each row as a record: the first column's value in bold, then `  header: value` for the others, the
    value wrapping beside its header, or under it (indented) when one of its words would not fit beside it."""
    out: list[RenderableType] = []
    if table.title:
        out.append(Text.from_markup(table.title, style="bold") if isinstance(table.title, str) else table.title)
    columns = table.columns
    headers = [" · ".join(_plain(c.header).splitlines()) for c in columns[1:]]  # a multi-line header on one line
    label = max((len(h) for h in headers), default=0) + 4  # "  header: "
    for row in zip(*[list(c.cells) for c in columns], strict=True) if columns else []:
        first, *rest = row
        out.append(_text(first, "bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for header, value in zip(headers, rest, strict=True):
            text = _text(value)
            longest = max((len(w) for w in text.plain.split()), default=0)
            if label + longest <= width:
                grid.add_row(Text(f"  {header}:", style="dim"), text)
            else:  # the value under its header, on the full width
                grid.add_row(Text(f"  {header}:", style="dim"), "")
                out.append(grid)
                out.append(Padding(text, (0, 0, 0, 4)))
                grid = Table.grid(padding=(0, 1))
                grid.add_column(no_wrap=True)
                grid.add_column(overflow="fold")
        if grid.row_count:
            out.append(grid)
    return out


def _plain(value: RenderableType) -> str:
    return value.plain if isinstance(value, Text) else Text.from_markup(str(value)).plain


def _text(value: RenderableType, style: str = "") -> Text:
    text = value.copy() if isinstance(value, Text) else Text.from_markup(str(value))
    if style:
        text.stylize(style)
    return text
