"""The search over a synthetic oracle: the window, holes and boundaries it finds, and how many probes it took."""
from __future__ import annotations

import math

import pytest

from modelcompat.ranges.bisection import bisect, budget, per_boundary


def _run(passing: list[bool]):
    asked: list[int] = []

    def ok(i: int) -> bool:
        asked.append(i)
        return passing[i]

    search = bisect(len(passing), ok)
    assert len(asked) == len(set(asked)) == search.probes, "a release is probed once"
    return search


def _window(n: int, low: int, high: int, holes: tuple[int, ...] = ()) -> list[bool]:
    return [low <= i <= high and i not in holes for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 11, 36, 100])
def test_all_pass_costs_at_most_one_boundary_budget(n: int) -> None:
    search = _run([True] * n)
    assert (search.low, search.high, search.holes, search.boundaries) == (0, n - 1, [], [])
    assert search.probes <= per_boundary(n)


@pytest.mark.parametrize("n", [1, 2, 11, 36, 100])
def test_all_fail_has_no_window(n: int) -> None:
    search = _run([False] * n)
    assert (search.low, search.high, search.boundaries) == (None, None, [])
    assert search.probes <= per_boundary(n)


@pytest.mark.parametrize(("n", "low", "high"), [(11, 7, 10), (36, 9, 35), (36, 0, 20), (36, 5, 30), (100, 40, 60),
                                                 (100, 1, 98), (2, 1, 1), (2, 0, 0)])
def test_monotone_window_is_found_exactly(n: int, low: int, high: int) -> None:
    search = _run(_window(n, low, high))
    assert (search.low, search.high, search.holes) == (low, high, [])
    sides = {b.side: (b.failing, b.passing) for b in search.boundaries}
    if low > 0:
        assert sides["lower"] == (low - 1, low)
    if high < n - 1:
        assert sides["upper"] == (high + 1, high)
    for b in search.boundaries:  # both sides of every boundary were really probed
        assert search.outcomes[b.failing] is False and search.outcomes[b.passing] is True
    assert search.probes <= budget(search)
    assert budget(search) == (math.ceil(math.log2(n)) + 4) * len(search.boundaries) or not search.boundaries


def test_cost_is_logarithmic_per_boundary() -> None:
    n = 1000
    search = _run(_window(n, 613, n - 1))
    assert len(search.boundaries) == 1
    assert search.probes <= math.ceil(math.log2(n)) + 4 == 14


def test_a_hole_in_the_middle_is_found_and_bounded() -> None:
    # 36 releases passing from 9 on, but 23..26 fail (a regression fixed later); the sample at 25 lands in it
    search = _run(_window(36, 9, 35, holes=(23, 24, 25, 26)))
    assert (search.low, search.high) == (9, 35)
    assert search.holes == [(23, 26)]
    sides = {b.side: (b.failing, b.passing) for b in search.boundaries}
    assert sides["hole_start"] == (23, 22) and sides["hole_end"] == (26, 27)
    assert search.probes <= budget(search)


def test_a_hole_of_one_release() -> None:
    search = _run(_window(11, 0, 10, holes=(6,)))
    assert search.holes == [(6, 6)]
    assert search.probes <= budget(search)


def test_holes_are_sampled_not_proven_absent() -> None:
    # Two samples per window: a one-release hole between them is not seen (the price of the budget).
    search = _run(_window(11, 0, 10, holes=(5,)))
    assert search.holes == [] and 5 not in search.outcomes


def test_known_outcomes_are_never_asked_again() -> None:
    passing = _window(36, 9, 35, holes=(23, 24, 25, 26))
    first = _run(passing)
    again = bisect(36, lambda i: pytest.fail(f"asked {i} again"), known=first.outcomes)
    assert (again.low, again.high, again.holes, again.probes) == (first.low, first.high, first.holes, 0)


def test_a_new_release_is_all_a_later_search_asks() -> None:
    first = _run(_window(11, 7, 10))
    asked: list[int] = []
    later = bisect(12, lambda i: asked.append(i) or True, known=first.outcomes)  # release 11 came out: it passes
    assert asked == [11] and (later.low, later.high) == (7, 11)


def test_a_narrow_window_between_failing_ends_may_be_missed_within_budget() -> None:
    # One passing release among 100 with both ends failing: finding it would take a probe per release. The
    # search stops at its budget and says no window was found (the CLI reports how many releases it probed).
    search = _run(_window(100, 77, 77))
    assert search.low is None and search.probes == per_boundary(100)


def test_no_release_is_an_error() -> None:
    with pytest.raises(ValueError):
        bisect(0, lambda i: True)
