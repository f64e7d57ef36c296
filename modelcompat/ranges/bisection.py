"""The search itself, over releases sorted oldest first and a pass/fail oracle (one probe per call).

Assumes the passing releases form one window (monotone on each side): finds a passing release, bisects
each end from it, so every boundary ends as two *adjacent* probed releases, one failing and one passing
(both sides verified); then samples inside the window for holes (a release in the middle that fails) and
bisects each hole's extent the same way. Cost: at most ceil(log2 n) + 4 probes per boundary found (one
boundary counted when there is none: the all-pass case); `budget` states it, tests assert it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Side = Literal["lower", "upper", "hole_start", "hole_end"]
HOLE_SAMPLES = 2  # interior probes that look for holes (the "+4" of the budget: 2 ends + these 2)


@dataclass(frozen=True)
class Boundary:
    """Where pass turns to fail between two adjacent releases (indices), both probed."""

    side: Side
    failing: int
    passing: int


@dataclass
class Search:
    """What the search learned: every probe in order, the window, its holes and its boundaries (indices)."""

    n: int
    outcomes: dict[int, bool] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    low: int | None = None
    high: int | None = None
    holes: list[tuple[int, int]] = field(default_factory=list)
    boundaries: list[Boundary] = field(default_factory=list)

    @property
    def probes(self) -> int:
        return len(self.order)


def per_boundary(n: int) -> int:
    """The probe budget of one boundary among n releases: ceil(log2 n) + 4."""
    return math.ceil(math.log2(max(n, 1))) + 4


def budget(search: Search) -> int:
    """The most probes the search may have spent: per_boundary(n) for each boundary found (at least one)."""
    return per_boundary(search.n) * max(1, len(search.boundaries))


def bisect(n: int, ok: Callable[[int], bool], samples: int = HOLE_SAMPLES) -> Search:
    """Search n releases (index 0 the oldest) with `ok(i)` (True: release i passes). Each index is asked once."""
    if n < 1:
        raise ValueError("no releases to search")
    search = Search(n)

    def probe(i: int) -> bool:
        if i not in search.outcomes:
            search.outcomes[i] = bool(ok(i))
            search.order.append(i)
        return search.outcomes[i]

    anchor = _find_pass(n, probe, per_boundary(n))
    if anchor is None:
        return search  # no release passes among those probed: no window, no boundary
    failing_below = [i for i, good in search.outcomes.items() if not good and i < anchor]
    if not failing_below and not probe(0):
        failing_below = [0]
    if failing_below:
        low, fail = _bisect_edge(max(failing_below), anchor, probe)
        search.boundaries.append(Boundary("lower", fail, low))
    else:
        low = 0
    failing_above = [i for i, good in search.outcomes.items() if not good and i > anchor]
    if not failing_above and not probe(n - 1):
        failing_above = [n - 1]
    if failing_above:
        high, fail = _bisect_edge(min(failing_above), anchor, probe)
        search.boundaries.append(Boundary("upper", fail, high))
    else:
        high = n - 1
    search.low, search.high = low, high
    for i in _interior_samples(search, samples):
        probe(i)
    _expand_holes(search, probe)
    return search


def _find_pass(n: int, probe: Callable[[int], bool], limit: int) -> int | None:
    """A passing index: the newest, then the oldest, then midpoints of ever finer halves (up to `limit` probes)."""
    if probe(n - 1):
        return n - 1
    if n == 1:
        return None
    if probe(0):
        return 0
    asked = 2
    pending = [(0, n - 1)]
    while pending and asked < limit:
        next_round = []
        for left, right in pending:
            if right - left < 2 or asked >= limit:
                continue
            middle = (left + right) // 2
            asked += 1
            if probe(middle):
                return middle
            next_round += [(left, middle), (middle, right)]
        pending = next_round
    return None


def _bisect_edge(fail: int, good: int, probe: Callable[[int], bool]) -> tuple[int, int]:
    """Narrow (fail, good) until adjacent; returns (passing, failing) indices, both probed."""
    while abs(good - fail) > 1:
        middle = (fail + good) // 2
        if probe(middle):
            good = middle
        else:
            fail = middle
    return good, fail


def _interior_samples(search: Search, samples: int) -> list[int]:
    """Unprobed releases inside the window at the middle of its widest unprobed gaps."""
    assert search.low is not None and search.high is not None
    chosen: list[int] = []
    for _ in range(samples):
        known = sorted({*(i for i in search.outcomes if search.low <= i <= search.high), *chosen})
        gaps = [(b - a, a, b) for a, b in zip(known, known[1:]) if b - a > 1]
        if not gaps:
            break
        _, a, b = max(gaps, key=lambda g: (g[0], -g[1]))
        chosen.append((a + b) // 2)
    return chosen


def _expand_holes(search: Search, probe: Callable[[int], bool]) -> None:
    """Every failing probe inside the window grows into a hole bounded by probed passes on both sides."""
    assert search.low is not None and search.high is not None
    seen: set[int] = set()
    for i in sorted(i for i, good in search.outcomes.items() if not good and search.low < i < search.high):
        if i in seen:
            continue
        left_pass = max(j for j, good in search.outcomes.items() if good and j < i)
        start_pass, start = _bisect_edge(i, left_pass, probe)
        right_pass = min(j for j, good in search.outcomes.items() if good and j > i)
        end_pass, end = _bisect_edge(i, right_pass, probe)
        search.holes.append((start, end))
        search.boundaries += [Boundary("hole_start", start, start_pass), Boundary("hole_end", end, end_pass)]
        seen.update(range(start, end + 1))
