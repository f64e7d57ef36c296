"""Fitted tables: columns sized from their longest word up, records when even that does not fit; never a cut."""
from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from modelcompat.render.fit import Fitted, column_widths, records

DESCRIPTION = "a long description that wraps at its spaces and never inside a word like incomprehensibilities"


def _table() -> Table:
    table = Table(title="validators")
    table.add_column("name", no_wrap=True)
    table.add_column("description")
    table.add_row("numerical_parity", DESCRIPTION)
    table.add_row("io_contract", "short")
    return table


def _out(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


@pytest.mark.parametrize("width", [30, 40, 60, 80, 160])
def test_no_word_is_cut_and_no_line_overflows(width) -> None:
    out = _out(Fitted(_table()), width)
    assert max(len(line) for line in out.splitlines()) <= width
    assert "…" not in out
    words = set(out.replace("│", " ").split())
    assert {"numerical_parity", "io_contract", "incomprehensibilities"} <= words


def test_columns_keep_their_longest_word_and_share_the_rest() -> None:
    console = Console(file=io.StringIO(), width=60)
    widths = column_widths(console, _table(), 60)
    assert widths is not None and widths[0] == len("numerical_parity") and widths[1] >= len("incomprehensibilities")
    assert column_widths(console, _table(), 30) is None  # name + longest word + borders do not fit
    assert column_widths(console, _table(), 500) == [len("numerical_parity"), len(DESCRIPTION)]  # natural


def test_too_narrow_for_a_table_each_row_is_a_record() -> None:
    out = _out(Fitted(_table()), 30)
    assert "┃" not in out and out.splitlines()[0] == "validators"
    assert "numerical_parity" in out.splitlines()[1] and "description:" in out
    assert len(records(_table())) == 1 + 2 * 2  # the title, then a name and a grid per row
