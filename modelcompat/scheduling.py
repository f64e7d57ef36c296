"""The order cells are handed to Dask: longest first, from how long their checks took last time.

With a few cells per worker, the run ends when the last cell does; a long cell started last leaves
the other workers idle meanwhile. Handing cells out longest first (LPT, longest processing time)
keeps the finish within one shortest cell of balanced. A cell with a check never timed before is put
first, in plan order: nothing says it is short, and running it early also times it for next time.
"""
from __future__ import annotations

from collections.abc import Iterable

from modelcompat.plan import PlannedCheck


def expected_cell_seconds(plan: Iterable[PlannedCheck]) -> dict[str, float | None]:
    """Per cell with checks to run: the summed last durations of those checks (None if one is unknown)."""
    totals: dict[str, float | None] = {}
    for p in plan:
        if p.decision != "run":
            continue
        known = totals.get(p.cell.id, 0.0)
        totals[p.cell.id] = None if known is None or p.expected_s is None else known + p.expected_s
    return totals


def longest_first(plan: list[PlannedCheck]) -> list[str]:
    """Cell ids with checks to run: never-timed cells in plan order, then the others longest first."""
    expected = expected_cell_seconds(plan)
    order = list(expected)  # plan order (dicts keep insertion order)
    return sorted(order, key=lambda cell: (expected[cell] is not None, -(expected[cell] or 0.0), order.index(cell)))
