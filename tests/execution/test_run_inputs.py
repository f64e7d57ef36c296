"""A stored run's inputs found again: its package by the model's sha256, its matrix's cells, a failing parity report."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.errors import InputError
from modelcompat.execution.run_inputs import failing_parity, find_package, run_cell, run_cells
from modelcompat.results.report import Status
from support.store_records import make_report, make_run


def test_the_package_must_hold_the_run_model(demo_package):
    record = make_run("20261205T000000Z-a").model_copy(update={"model_sha256": demo_package.primary_sha256})
    assert find_package(record, demo_package.root).root == demo_package.root
    other = make_run("20261205T000000Z-b")  # sha256 "abab…"
    with pytest.raises(InputError, match="is not the one run 20261205T000000Z-b checked") as info:
        find_package(other, demo_package.root)
    assert info.value.field == "--model"


def test_cells_come_from_the_recorded_matrix(tmp_path):
    default = str(Path(__file__).resolve().parents[2] / "matrices" / "default.yaml")
    cells = run_cells(make_run("20261205T000000Z-a").model_copy(update={"matrix_path": default}), None)
    assert run_cell(cells, "host-ort/cpu/ort-cpu", "--cell").backend.id == "ort-cpu"
    with pytest.raises(InputError, match="one of: .*host-ort/cpu/ort-cpu"):
        run_cell(cells, "nope", "--cell")
    with pytest.raises(InputError, match="was not found"):
        run_cells(make_run("20261205T000000Z-a").model_copy(update={"matrix_path": str(tmp_path / "gone.yaml")}), None)


def test_only_a_failing_parity_report_is_localised():
    fail = make_report("r", 2).model_copy(update={"cell": "a/cpu/x", "validator": "numerical_parity",
                                                  "status": Status.FAIL})
    ok = fail.model_copy(update={"cell": "b/cpu/x", "status": Status.PASS})
    assert failing_parity([fail, ok], "r", "a/cpu/x") is fail
    with pytest.raises(InputError, match="did not fail on b/cpu/x .*it is pass"):
        failing_parity([fail, ok], "r", "b/cpu/x")
    with pytest.raises(InputError, match="no numerical_parity report for cell 'c'") as info:
        failing_parity([fail, ok], "r", "c")
    assert "a/cpu/x" in info.value.fix
