"""The harness's order of a cell's checks: shared-load checks before reloading ones; a check that would
have to wait goes behind the others, once."""
from __future__ import annotations

from modelcompat.harness import run_order


class _Check:
    """Stands in for a Validator: only `name` and `busy()` matter to the ordering."""

    def __init__(self, name: str, busy_answers: list[bool] | None = None, broken: bool = False,
                 reloads_model: bool = False) -> None:
        self.name = name
        self.reloads_model = reloads_model
        self._answers = list(busy_answers or [])
        self._broken = broken
        self.asked = 0

    def busy(self) -> bool:
        self.asked += 1
        if self._broken:
            raise RuntimeError("hook bug")
        return self._answers.pop(0) if self._answers else False


def _order(checks: list[_Check]) -> list[str]:
    return [v.name for v, _ in run_order([(c, None) for c in checks])]


def test_a_busy_check_runs_after_the_cells_other_checks() -> None:
    checks = [_Check("a"), _Check("latency", [True]), _Check("b"), _Check("c")]
    assert _order(checks) == ["a", "b", "c", "latency"]


def test_a_check_is_put_off_only_once_and_then_runs_even_if_still_busy() -> None:
    latency = _Check("latency", [True, True, True])
    assert _order([latency, _Check("a")]) == ["a", "latency"]
    assert latency.asked == 1  # the second time round it just runs (and waits inside, as before)


def test_the_last_check_is_not_asked_it_would_only_wait_anyway() -> None:
    latency = _Check("latency", [True])
    assert _order([_Check("a"), latency]) == ["a", "latency"]
    assert latency.asked == 0


def test_a_broken_busy_hook_leaves_the_order_alone() -> None:
    assert _order([_Check("x", broken=True), _Check("a")]) == ["x", "a"]


def test_checks_that_load_their_own_variant_run_after_those_sharing_the_cells_load() -> None:
    checks = [_Check("data_contract"), _Check("determinism", reloads_model=True), _Check("io_contract"),
              _Check("latency", reloads_model=True), _Check("loadability")]
    assert _order(checks) == ["data_contract", "io_contract", "loadability", "determinism", "latency"]


def test_a_busy_reloading_check_still_goes_behind_the_rest() -> None:
    checks = [_Check("latency", [True], reloads_model=True), _Check("determinism", reloads_model=True),
              _Check("io_contract")]
    assert _order(checks) == ["io_contract", "determinism", "latency"]
