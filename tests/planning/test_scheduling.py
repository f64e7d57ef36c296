"""The order cells are handed to Dask: never-timed cells first in plan order, then longest first."""
from __future__ import annotations

import pytest

from modelcompat.planning.plan import PlannedCheck
from modelcompat.planning.scheduling import expected_cell_seconds, longest_first
from support.pkgvariants import HOST_ORT, ORT_116, TORCH_EAGER, TORCHSCRIPT


def _check(cell, validator: str, seconds: float | None, decision: str = "run") -> PlannedCheck:
    return PlannedCheck(cell, validator, decision, "test", expected_s=seconds)


def test_cells_are_ordered_by_their_summed_last_durations_longest_first() -> None:
    plan = [_check(HOST_ORT, "a", 1.0), _check(HOST_ORT, "b", 0.5),
            _check(ORT_116, "a", 4.0),
            _check(TORCHSCRIPT, "a", 0.2), _check(TORCHSCRIPT, "b", 2.0)]
    assert expected_cell_seconds(plan) == {HOST_ORT.id: 1.5, ORT_116.id: 4.0, TORCHSCRIPT.id: 2.2}
    assert longest_first(plan) == [ORT_116.id, TORCHSCRIPT.id, HOST_ORT.id]


def test_a_cell_with_a_never_timed_check_goes_first_in_plan_order() -> None:
    plan = [_check(HOST_ORT, "a", 9.0), _check(TORCHSCRIPT, "a", 1.0), _check(TORCHSCRIPT, "b", None),
            _check(TORCH_EAGER, "a", None), _check(ORT_116, "a", 3.0)]
    assert longest_first(plan) == [TORCHSCRIPT.id, TORCH_EAGER.id, HOST_ORT.id, ORT_116.id]


def test_checks_not_to_run_neither_count_nor_schedule_their_cell() -> None:
    plan = [_check(HOST_ORT, "a", 5.0, "cached"), _check(HOST_ORT, "b", 1.0),
            _check(ORT_116, "a", 2.0), _check(TORCHSCRIPT, "a", 8.0, "skipped")]
    assert longest_first(plan) == [ORT_116.id, HOST_ORT.id]
    assert expected_cell_seconds(plan)[HOST_ORT.id] == 1.0


def test_a_cells_setup_time_counts_once_towards_its_length() -> None:
    """A torch cell's short checks plus its ~1 s probe start can outlast an onnxruntime cell's longer checks."""
    torch_cell = [PlannedCheck(TORCHSCRIPT, v, "run", "t", expected_s=0.5, setup_s=1.5) for v in ("a", "b")]
    ort_cell = [PlannedCheck(HOST_ORT, v, "run", "t", expected_s=1.1, setup_s=0.1) for v in ("a", "b")]
    assert expected_cell_seconds(torch_cell + ort_cell) == pytest.approx({TORCHSCRIPT.id: 2.5, HOST_ORT.id: 2.3})
    assert longest_first(ort_cell + torch_cell) == [TORCHSCRIPT.id, HOST_ORT.id]
