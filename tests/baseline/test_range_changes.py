"""A range compared with the previous stored range of the same model: releases lost are graded regressions."""
from __future__ import annotations

from pathlib import Path

from modelcompat.baseline.range_changes import blocking, compare_ranges, previous_range, range_regressions
from modelcompat.ranges.records import RangeRecord, save_range
from modelcompat.store import Store

RELEASES = ["1.16.3", "1.17.3", "1.18.0", "1.19.0", "1.20.0", "1.21.0"]


def _range(created: str, **changes: object) -> RangeRecord:
    base = dict(model="m", model_version="1", artifact_sha256="ab", runtime="onnxruntime", hardware="cpu",
                backend="ort-cpu", validators=["loadability"], index_url="https://pypi.org/simple", releases=RELEASES,
                min="1.17.3", max="1.21.0", holes=[], boundaries=[], probes=[],
                created_at=f"2026-12-0{created}T00:00:00.000000+00:00")
    return RangeRecord(**{**base, **changes})  # type: ignore[arg-type]


def test_a_lower_bound_that_rises_is_a_critical_regression_per_release_lost() -> None:
    before = _range("1")
    after = _range("2", min="1.19.0", probes=[{"release": "1.18.0", "status": "fail",
                                               "finding": "loadability.opset_unsupported, ai.onnx 21 > 20"}])
    comparison = compare_ranges(before, after)
    assert [(c.cell, c.severity, c.from_, c.to) for c in comparison.regressions] == [
        ("onnxruntime-1.17.3/cpu/ort-cpu", "critical", "pass", "outside the range"),
        ("onnxruntime-1.18.0/cpu/ort-cpu", "critical", "pass", "fail")]
    assert "the lower bound rose; loadability.opset_unsupported, ai.onnx 21 > 20" in comparison.regressions[1].note
    assert blocking(comparison)


def test_a_hole_or_a_falling_upper_bound_is_a_regression_too() -> None:
    lost = compare_ranges(_range("1"), _range("2", max="1.19.0", holes=["1.18.0"]))
    assert [(c.cell.split("/")[0], c.note.split(": ")[-1]) for c in lost.regressions] == [
        ("onnxruntime-1.18.0", "a hole"), ("onnxruntime-1.20.0", "the upper bound fell"),
        ("onnxruntime-1.21.0", "the upper bound fell")]


def test_a_wider_or_narrower_search_window_is_not_a_shrink() -> None:
    narrower = _range("2", releases=RELEASES[2:4], min="1.18.0", max="1.19.0")
    assert compare_ranges(_range("1"), narrower).regressions == []
    grown = _range("2", min="1.16.3")
    assert compare_ranges(_range("1"), grown).regressions == []


def test_the_previous_range_is_the_same_model_runtime_cell_and_checks(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for record in (_range("1"), _range("2", backend="ort-cuda", min="1.21.0"),
                   _range("3", validators=["loadability", "numerical_parity"], min="1.21.0")):
        save_range(store, record)
    newest = _range("4", min="1.18.0")
    save_range(store, newest)
    assert previous_range(store, newest).created_at.startswith("2026-12-01")
    assert [c.cell for c in range_regressions(store, newest).regressions] == ["onnxruntime-1.17.3/cpu/ort-cpu"]
    assert range_regressions(Store(tmp_path / "empty"), newest).regressions == []
