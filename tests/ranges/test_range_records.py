"""Ranges and probes in a real store: round trips, ordering, and what a range says (line, passing releases)."""
from __future__ import annotations

from pathlib import Path

from modelcompat.ranges.probe import summarize
from modelcompat.ranges.records import (
    RangeRecord,
    latest_range,
    load_probe,
    probe_keys,
    save_probe,
    save_range,
    stored_ranges,
)
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.store import Store

RELEASES = ["1.16.3", "1.17.3", "1.18.0", "1.19.0", "1.20.0", "1.21.0"]


def record(**changes: object) -> RangeRecord:
    base = dict(model="org/m", model_version="1", artifact_sha256="ab", runtime="onnxruntime", hardware="cpu",
                backend="ort-cpu", validators=["loadability"], index_url="https://pypi.org/simple", releases=RELEASES,
                min="1.18.0", max="1.21.0", holes=["1.20.0"], boundaries=[], probes=[])
    return RangeRecord(**{**base, **changes})  # type: ignore[arg-type]


def test_a_probe_round_trips_with_all_its_reports(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    finding = Finding(code="loadability.opset_unsupported", severity=Severity.ERROR,
                      message="Opset 21 is under development ... domain ai.onnx is till opset 20")
    reports = [Report(run_id="range-1", cell="ort-1.17.3/cpu/ort-cpu", runtime="ort-1.17.3", runtime_version=None,
                      hardware="cpu", backend="ort-cpu", validator="loadability", validator_version="3",
                      status=Status.FAIL, findings=(finding,))]
    probe = summarize("1.17.3", "a" * 64, reports)
    save_probe(store, "org/m", probe)
    save_probe(store, "org/m", probe)  # the same key again: kept as it is, no error
    assert probe_keys(store, "org/m") == {"a" * 64}
    loaded = load_probe(store, "org/m", "1.17.3", "a" * 64)
    assert loaded is not None and loaded.reused
    assert (loaded.status, loaded.finding, loaded.reports) == ("fail", "loadability.opset_unsupported, ai.onnx 21 > 20",
                                                               tuple(reports))
    assert load_probe(store, "org/m", "1.17.3", "b" * 64) is None
    assert (tmp_path / "store" / "ranges" / "org%2Fm" / "probes" / f"{'a' * 64}.parquet").is_file()


def test_ranges_are_listed_oldest_first_and_filtered(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    first = record(created_at="2026-12-01T00:00:00.000000+00:00")
    second = record(created_at="2026-12-02T00:00:00.000000+00:00", min="1.17.3")
    other = record(created_at="2026-12-03T00:00:00.000000+00:00", backend="ort-cuda")
    for r in (second, other, first):
        save_range(store, r)
    assert [r.min for r in stored_ranges(store, "org/m")] == ["1.18.0", "1.17.3", "1.18.0"]
    assert latest_range(store, "org/m", "onnxruntime", backend="ort-cpu").min == "1.17.3"
    assert latest_range(store, "org/m", "torch") is None
    assert stored_ranges(store, "nobody") == []


def test_the_answer_in_one_line_and_the_releases_it_covers() -> None:
    r = record()
    assert r.line() == "onnxruntime >=1.18.0, <=1.21.0 (holes: 1.20.0)"
    assert r.passing() == ["1.18.0", "1.19.0", "1.21.0"]
    none = record(min=None, max=None, holes=[], probes=[{"release": "1.21.0"}] * 4)
    assert none.line() == "onnxruntime: no release from 1.16.3 to 1.21.0 passes (4 of 6 probed)"
    assert none.passing() == [] and not none.found
    assert RangeRecord.from_json(r.to_json()).to_json() == r.to_json()
