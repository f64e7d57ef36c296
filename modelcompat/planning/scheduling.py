"""The order cells are handed to Dask: longest first, from how long their checks took last time.

With a few cells per worker, the run ends when the last cell does; a long cell started last leaves
the other workers idle meanwhile. A cell's length is its checks' last durations plus its last setup
time (runtime and probe start, outside every check). Handing cells out longest first (LPT, longest processing time)
keeps the finish within one shortest cell of balanced. A cell with a check never timed before is put
first, in plan order: nothing says it is short, and running it early also times it for next time.
"""
from __future__ import annotations

from collections.abc import Iterable

from modelcompat.planning.plan import PlannedCheck


def expected_cell_seconds(plan: Iterable[PlannedCheck]) -> dict[str, float | None]:
    """Per cell with checks to run: the summed last durations of those checks plus the cell's last setup
    time (runtime and probe start: ~1.2 s for a torch cell, which would otherwise look short); None if
    a check was never timed."""
    totals: dict[str, float | None] = {}
    for p in plan:
        if p.decision != "run":
            continue
        if p.cell.id not in totals:
            totals[p.cell.id] = p.setup_s or 0.0
        known = totals[p.cell.id]
        totals[p.cell.id] = None if known is None or p.expected_s is None else known + p.expected_s
    return totals


def longest_first(plan: list[PlannedCheck]) -> list[str]:
    """Cell ids with checks to run: never-timed cells in plan order, then the others longest first."""
    expected = expected_cell_seconds(plan)
    order = list(expected)  # plan order (dicts keep insertion order)
    return sorted(order, key=lambda cell: (expected[cell] is not None, -(expected[cell] or 0.0), order.index(cell)))
