"""The search itself, over releases sorted oldest first and a pass/fail oracle (one probe per call).

Assumes the passing releases form one window (monotone on each side): finds a passing release, bisects
each end from it, so every boundary ends as two *adjacent* probed releases, one failing and one passing
(both sides verified); then samples inside the window for holes (a release in the middle that fails) and
bisects each hole's extent the same way. Cost: at most ceil(log2 n) + 4 probes per boundary found (one
boundary counted when there is none: the all-pass case); `budget` states it, tests assert it.

Outcomes already known (stored probes of an earlier range) are used before anything is asked: brackets
narrow through them and a hole sample is taken only where the window's part has no known outcome, so a
range over the same releases asks nothing, and one with a new upstream release asks little beyond it.
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
    outcomes: dict[int, bool] = field(default_factory=dict)  # known and asked
    order: list[int] = field(default_factory=list)  # asked, in order (known outcomes are never asked)
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


def bisect(n: int, ok: Callable[[int], bool], samples: int = HOLE_SAMPLES,
           known: dict[int, bool] | None = None) -> Search:
    """Search n releases (index 0 the oldest) with `ok(i)` (True: release i passes). Each index is asked at most
    once, and never one in `known` (outcomes already established, e.g. stored probes)."""
    if n < 1:
        raise ValueError("no releases to search")
    search = Search(n, outcomes={i: bool(v) for i, v in (known or {}).items() if 0 <= i < n})

    def probe(i: int) -> bool:
        if i not in search.outcomes:
            search.outcomes[i] = bool(ok(i))
            search.order.append(i)
        return search.outcomes[i]

    if _find_pass(n, probe, per_boundary(n)) is None:
        return search  # no release passes among those probed: no window, no boundary
    # Each end is bisected from the outermost release known to pass on that side: a failure known further
    # in (a hole, from stored probes) is left to the hole search, not mistaken for the window's edge.
    if not any(not good and i < _oldest_pass(search) for i, good in search.outcomes.items()):
        probe(0)
    lowest = _oldest_pass(search)
    failing_below = [i for i, good in search.outcomes.items() if not good and i < lowest]
    if failing_below:
        low, fail = _bisect_edge(max(failing_below), lowest, probe, search.outcomes)
        search.boundaries.append(Boundary("lower", fail, low))
    else:
        low = lowest
    if not any(not good and i > _newest_pass(search) for i, good in search.outcomes.items()):
        probe(n - 1)
    highest = _newest_pass(search)
    failing_above = [i for i, good in search.outcomes.items() if not good and i > highest]
    if failing_above:
        high, fail = _bisect_edge(min(failing_above), highest, probe, search.outcomes)
        search.boundaries.append(Boundary("upper", fail, high))
    else:
        high = highest
    search.low, search.high = low, high
    for i in _interior_samples(search, samples):
        probe(i)
    _expand_holes(search, probe)
    return search


def _oldest_pass(search: Search) -> int:
    return min(i for i, good in search.outcomes.items() if good)


def _newest_pass(search: Search) -> int:
    return max(i for i, good in search.outcomes.items() if good)


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


def _bisect_edge(fail: int, good: int, probe: Callable[[int], bool], outcomes: dict[int, bool]) -> tuple[int, int]:
    """Narrow (fail, good) until adjacent, through known outcomes first; returns (passing, failing), both known."""
    while abs(good - fail) > 1:
        step = 1 if good > fail else -1
        between = range(fail + step, good, step)  # from the failing side towards the passing one
        known_fail = [i for i in between if outcomes.get(i) is False]
        if known_fail:
            fail = known_fail[-1]
            continue
        known_good = [i for i in between if outcomes.get(i) is True]
        if known_good:
            good = known_good[0]
            continue
        middle = (fail + good) // 2
        if probe(middle):
            good = middle
        else:
            fail = middle
    return good, fail


def _interior_samples(search: Search, samples: int) -> list[int]:
    """One release in each of the window's `samples` middle parts (of samples + 2 equal parts) with no known
    outcome yet: its middle. A part already holding a known outcome (a bisection step, a stored probe) needs
    none, so the same window searched again samples nothing."""
    assert search.low is not None and search.high is not None
    low, high = search.low, search.high
    parts = samples + 2
    chosen: list[int] = []
    for k in range(1, samples + 1):
        a = max(low + ((high - low) * k) // parts, low + 1)
        b = min(low + ((high - low) * (k + 1)) // parts, high - 1)
        if a > b or any(a <= i <= b for i in [*search.outcomes, *chosen]):
            continue
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
        start_pass, start = _bisect_edge(i, left_pass, probe, search.outcomes)
        right_pass = min(j for j, good in search.outcomes.items() if good and j > i)
        end_pass, end = _bisect_edge(i, right_pass, probe, search.outcomes)
        search.holes.append((start, end))
        search.boundaries += [Boundary("hole_start", start, start_pass), Boundary("hole_end", end, end_pass)]
        seen.update(range(start, end + 1))
