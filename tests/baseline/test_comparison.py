"""Comparison rules: every status transition, every metric rule (direction, thresholds, floor, noise), verdict."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modelcompat.baseline.comparison import (
    METRIC_RULES,
    TRANSITIONS,
    compare_frames,
    compare_reports,
    compare_run,
    reports_frame,
    rule_for,
)
from modelcompat.baseline.promotion import promote
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.store import Store
from support.store_records import T0, make_run

CELL = "ort-1.18/cpu/ort-cpu"


def rep(status: str = "pass", run_id: str = "new", cell: str = CELL, validator: str = "latency",
        findings: tuple[Finding, ...] = (), runtime_version: str = "onnxruntime 1.18.0", **metrics: float) -> Report:
    return Report(run_id=run_id, cell=cell, runtime="ort-1.18", runtime_version=runtime_version, hardware="cpu",
                  backend="ort-cpu", validator=validator, validator_version="1", status=Status(status),
                  metrics=metrics, findings=findings)


def compare(base: list[Report], new: list[Report]):
    return compare_frames(reports_frame(new), reports_frame(base))


STATUSES = [s.value for s in Status]


@pytest.mark.parametrize(("before", "after"), [(a, b) for a in STATUSES for b in STATUSES])
def test_every_status_transition(before: str, after: str) -> None:
    result = compare([rep(before, run_id="base")], [rep(after)])
    status_changes = [c for c in result.changes if c.kind == "status"]
    if before == after:
        assert status_changes == []
        return
    (change,) = status_changes
    assert (change.change, change.severity) == TRANSITIONS[(before, after)]
    assert (change.from_, change.to, change.baseline_run_id) == (before, after, "base")
    assert (change.remediation is not None) == (change.change == "regression")


def test_transition_table_is_what_the_docs_say() -> None:
    assert TRANSITIONS[("pass", "fail")] == ("regression", "critical")
    assert TRANSITIONS[("fail", "pass")] == ("fix", "info")
    assert TRANSITIONS[("pass", "error")] == ("regression", "major")
    assert TRANSITIONS[("pass", "warn")] == ("regression", "minor")
    assert len(TRANSITIONS) == len(STATUSES) * (len(STATUSES) - 1)  # every pair of different statuses


def test_new_and_removed_checks_are_info() -> None:
    result = compare([rep(validator="old", run_id="base")], [rep(validator="fresh")])
    kinds = {(c.validator, c.change, c.severity) for c in result.changes}
    assert kinds == {("fresh", "new", "info"), ("old", "removed", "info")}
    assert result.regressions == []


def test_status_regression_carries_the_finding_remediation_and_what_changed() -> None:
    finding = Finding(code="loadability.opset_unsupported", severity=Severity.ERROR, message="opset 20",
                      remediation="export with opset 17")
    result = compare([rep("pass", run_id="base", runtime_version="onnxruntime 1.18.0")],
                     [rep("fail", findings=(finding,), runtime_version="onnxruntime 1.16.3")])
    (change,) = result.regressions
    assert change.remediation == "export with opset 17"
    assert change.note == "runtime onnxruntime 1.18.0 → onnxruntime 1.16.3"


# metric, baseline, new, extra metrics on both sides (cv), expected (change, severity) or None
METRIC_CASES = [
    # latency: lower is better, +10 % minor, +25 % major
    ("p95_latency_ms", 10.0, 10.9, {}, None),
    ("p95_latency_ms", 10.0, 11.5, {}, ("regression", "minor")),
    ("p95_latency_ms", 10.0, 13.0, {}, ("regression", "major")),
    ("p95_latency_ms", 10.0, 8.5, {}, ("improvement", "info")),
    ("mean_latency_ms", 10.0, 13.0, {}, ("regression", "major")),
    # latency floor: 0.02 → 0.05 ms is timer resolution, not a regression
    ("p50_latency_ms", 0.02, 0.05, {}, None),
    # noise: cv 0.05 → threshold max(10 %, 3×5 %) = 15 %: +12 % is noise, +20 % minor
    ("p95_latency_ms", 10.0, 11.2, {"latency_cv": 0.05}, None),
    ("p95_latency_ms", 10.0, 12.0, {"latency_cv": 0.05}, ("regression", "minor")),
    # noise from p50/p95 when no cv: p50 = 10, p95 = 14 → cv ≈ 0.243 → threshold ≈ 73 %
    ("p99_latency_ms", 20.0, 30.0, {"p50_latency_ms": 10.0, "p95_latency_ms": 14.0}, None),
    ("p99_latency_ms", 20.0, 40.0, {"p50_latency_ms": 10.0, "p95_latency_ms": 14.0}, ("regression", "major")),
    # throughput: higher is better
    ("throughput_per_s", 1000.0, 950.0, {}, None),
    ("throughput_per_s", 1000.0, 850.0, {}, ("regression", "minor")),
    ("throughput_per_s", 1000.0, 700.0, {}, ("regression", "major")),
    ("throughput_per_s", 1000.0, 1200.0, {}, ("improvement", "info")),
    ("throughput_per_s_c2", 1000.0, 700.0, {}, ("regression", "major")),  # per concurrency level
    # load time: +25 % minor, +100 % major, 1 ms floor
    ("load_time_ms", 20.0, 24.0, {}, None),
    ("load_time_ms", 20.0, 30.0, {}, ("regression", "minor")),
    ("load_time_ms", 20.0, 45.0, {}, ("regression", "major")),
    ("load_time_ms", 1.0, 1.9, {}, None),
    # parity: growth factor > 2 minor, > 10 major, with an absolute floor
    ("max_abs_diff", 1e-9, 3e-9, {}, None),
    ("max_abs_diff", 1e-5, 1.5e-5, {}, None),
    ("max_abs_diff", 1e-5, 3e-5, {}, ("regression", "minor")),
    ("max_abs_diff", 1e-5, 2e-4, {}, ("regression", "major")),
    ("max_abs_diff", 0.0, 1e-3, {}, ("regression", "major")),
    ("max_abs_diff", 1e-3, 1e-5, {}, ("improvement", "info")),
    ("mean_abs_diff", 1e-6, 5e-6, {}, ("regression", "minor")),
    ("max_rel_diff", 1e-5, 5e-5, {}, None),
    ("max_rel_diff", 1e-3, 5e-3, {}, ("regression", "minor")),
    # memory: +10 % minor, +25 % major, 1 MB floor
    ("peak_rss_mb", 200.0, 215.0, {}, None),
    ("peak_rss_mb", 200.0, 230.0, {}, ("regression", "minor")),
    ("peak_rss_mb", 200.0, 260.0, {}, ("regression", "major")),
    ("peak_rss_mb", 5.0, 5.9, {}, None),
    ("peak_memory_mb", 100.0, 130.0, {}, ("regression", "major")),
    # not compared
    ("iterations", 200.0, 20.0, {}, None),
    ("hash_time_ms", 1.0, 100.0, {}, None),
]


@pytest.mark.parametrize(("metric", "before", "after", "extra", "expected"), METRIC_CASES,
                         ids=[f"{c[0]}:{c[1]}->{c[2]}" + ("+noise" if c[3] else "") for c in METRIC_CASES])
def test_metric_rules(metric: str, before: float, after: float, extra: dict, expected) -> None:
    result = compare([rep(run_id="base", **{**extra, metric: before})], [rep(**{**extra, metric: after})])
    found = [(c.change, c.severity) for c in result.changes if c.metric == metric]
    assert found == ([expected] if expected else [])
    if expected and expected[0] == "regression":
        (change,) = result.regressions
        assert (change.from_, change.to, change.kind, change.baseline_run_id) == (before, after, "metric", "base")
        assert change.remediation and "promote" in change.remediation
        if before:
            assert change.delta_pct == pytest.approx((after - before) / before * 100)


def test_every_rule_has_a_case() -> None:
    covered = {rule_for(c[0]).pattern for c in METRIC_CASES if rule_for(c[0])}
    assert covered == {r.pattern for r in METRIC_RULES}


def test_metrics_of_error_reports_are_not_compared() -> None:
    result = compare([rep(run_id="base", p95_latency_ms=1.0)], [rep("error", p95_latency_ms=100.0)])
    assert [c.kind for c in result.changes] == ["status"]


@pytest.mark.parametrize(("run_verdict", "changes", "expected"), [
    ("pass", [], "pass"),
    ("pass", [("pass", "warn")], "regressed"),
    ("fail", [("pass", "fail")], "fail"),
    ("error", [("pass", "error")], "error"),
    ("pass", [("fail", "pass")], "pass"),
    ("pass", [("pass", "skipped")], "pass"),
])
def test_verdict(run_verdict: str, changes: list[tuple[str, str]], expected: str) -> None:
    base = [rep(a, run_id="base", validator=f"v{i}") for i, (a, _) in enumerate(changes)]
    new = [rep(b, validator=f"v{i}") for i, (_, b) in enumerate(changes)]
    assert compare(base, new).verdict(run_verdict) == expected


def test_metric_regression_alone_makes_the_verdict_regressed() -> None:
    result = compare([rep(run_id="base", p95_latency_ms=10.0)], [rep(p95_latency_ms=20.0)])
    assert result.verdict("pass") == "regressed"
    assert result.regressions[0].to_json()["from"] == 10.0


def test_compare_run_uses_the_baseline_as_it_was_when_the_run_finished(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.append_run(make_run("r1", T0), [rep(run_id="r1", p95_latency_ms=10.0)])
    promote(store, "r1", now=T0 + timedelta(minutes=1))
    store.append_run(make_run("r2", T0 + timedelta(minutes=10)), [rep(run_id="r2", p95_latency_ms=20.0)])
    promote(store, "r2", now=T0 + timedelta(minutes=20))
    then = compare_run(store, "r2")
    assert then.baseline_run_id == "r1" and [c.severity for c in then.regressions] == ["major"]
    # against the baseline of today (r2 itself): nothing changed
    assert compare_run(store, "r2", as_of=T0 + timedelta(hours=1)).changes == []
    # in-memory reports of a run not yet appended
    live = compare_reports(store, "demo", [rep(run_id="r3", p95_latency_ms=20.5)])
    assert live.baseline_run_id == "r2" and live.regressions == []


def test_summary_and_markdown_carry_the_regressions() -> None:
    from modelcompat.render.prefect_artifacts import markdown_summary
    from modelcompat.results.summary import exit_code, run_summary

    new = [rep(p95_latency_ms=20.0), rep("warn", validator="parity", findings=(Finding(
        code="parity.drift", severity=Severity.WARN, message="drift", remediation="check fp16"),))]
    comparison = compare([rep(run_id="base", p95_latency_ms=10.0), rep(run_id="base", validator="parity")], new)
    doc = run_summary(run_id="new", model={"name": "m", "version": "1", "sha256": "0" * 64},
                      matrix={"name": "default", "path": "x"}, reports=new, started_at="s", finished_at="f",
                      trigger="cli", flow_run_id=None, comparison=comparison)
    assert doc.verdict == "regressed" and exit_code(doc.verdict) == 1
    assert doc.baseline_run_id == "base"
    assert [(g.kind, g.severity) for g in doc.regressions] == [("metric", "major"), ("status", "minor")]
    md = markdown_summary(doc)
    assert md.index("2 regression(s) against baseline run `base`") < md.index("| cell | validator | status |")
    assert "check fp16" in md and "`p95_latency_ms` 10 → 20 (+100.0%)" in md
    no_baseline = run_summary(run_id="new", model={"name": "m", "version": "1", "sha256": "0" * 64},
                              matrix={"name": "default", "path": "x"}, reports=new, started_at="s",
                              finished_at="f", trigger="cli", flow_run_id=None)
    assert no_baseline.baseline_run_id is None and no_baseline.regressions == []
    assert "No baseline for this model yet" in markdown_summary(no_baseline)


# ---- latency measured to a precision (issue 14): the precision decides what counts, never an unstable side

def precise(value: float, pct: float, reached: bool = True, metric: str = "p95_latency_ms") -> dict[str, float]:
    """A latency report's metrics as the `latency` check measures them to a precision."""
    return {metric: value, f"{metric}_precision_pct": pct, "precision_reached": float(reached), "latency_cv": 0.5}


PRECISION_CASES = [
    # baseline side, run side, expected (change, severity) or None
    # both precise (±1 %): +30 % is a major regression, though cv 0.5 would have hidden it (3×cv = 150 %)
    (precise(10.0, 1.0), precise(13.0, 1.0), ("regression", "major")),
    # both precise but loose (±15 % each → combined ±21.2 %): +20 % is inside it, +23 % is not
    (precise(10.0, 15.0), precise(12.0, 15.0), None),
    (precise(10.0, 15.0), precise(12.3, 15.0), ("regression", "minor")),
    # either side short of its precision: reported as an unstable change, never a regression
    (precise(10.0, 1.0), precise(30.0, 40.0, reached=False), ("change", "info")),
    (precise(10.0, 40.0, reached=False), precise(30.0, 1.0), ("change", "info")),
    # an unstable side that did not move beyond the thresholds is no change at all
    (precise(10.0, 1.0), precise(10.5, 40.0, reached=False), None),
    # an old baseline without precision metrics against a precise run: the cv rule (3 × 0.5 = 150 %)
    ({"p95_latency_ms": 10.0, "latency_cv": 0.5}, precise(13.0, 1.0), None),
]


@pytest.mark.parametrize(("before", "after", "expected"), PRECISION_CASES,
                         ids=["precise big change", "inside combined precision", "beyond combined precision",
                              "unstable run", "unstable baseline", "unstable, unmoved", "old baseline: cv rule"])
def test_latency_deltas_count_beyond_the_combined_precision_only(before, after, expected) -> None:
    result = compare([rep(run_id="base", **before)], [rep(**after)])
    found = [(c.change, c.severity) for c in result.changes if c.metric == "p95_latency_ms"]
    assert found == ([expected] if expected else [])
    if expected == ("change", "info"):
        (change,) = [c for c in result.changes if c.metric == "p95_latency_ms"]
        assert change.note.startswith("unstable measurement, not a regression") and "target not reached" in change.note
        assert result.regressions == [] and result.verdict("pass") == "pass"


def test_a_throughput_level_is_judged_by_its_own_precision() -> None:
    def level(value: float, pct: float, reached: bool) -> dict[str, float]:
        return {"throughput_per_s_c2": value, "throughput_c2_precision_pct": pct,
                "throughput_c2_precision_reached": float(reached), "precision_reached": 1.0}

    fell = compare([rep(run_id="base", **level(1000.0, 1.0, True))], [rep(**level(600.0, 1.0, True))])
    assert [(c.change, c.severity) for c in fell.changes] == [("regression", "major")]
    assert "combined precision ±1.41%" in fell.changes[0].note
    unstable = compare([rep(run_id="base", **level(1000.0, 1.0, True))], [rep(**level(600.0, 9.0, False))])
    assert [(c.change, c.severity) for c in unstable.changes] == [("change", "info")]


def test_a_latency_metric_without_a_precision_bound_is_unstable_when_it_moves() -> None:
    # p99 from a short measurement has no bound: a doubling is reported, but not as a regression
    before = {"p99_latency_ms": 10.0, "precision_reached": 1.0}
    result = compare([rep(run_id="base", **before)], [rep(**{**before, "p99_latency_ms": 20.0})])
    (change,) = result.changes
    assert (change.change, change.severity) == ("change", "info") and "no precision bound" in change.note


def test_timed_figures_measured_on_other_cores_are_a_change_not_a_regression() -> None:
    # An exclusive baseline (2 cores, 2 threads) against a partitioned run (1 core, 1 thread): twice the latency,
    # both measured precisely, is the conditions' doing. Named as such, never a regression.
    base = {**precise(10.0, 1.0), "cores": 2.0, "intra_op_threads": 2.0, "throughput_per_s_c1": 100.0,
            "throughput_c1_precision_pct": 1.0, "throughput_c1_precision_reached": 1.0}
    run = {**precise(20.0, 1.0), "cores": 1.0, "intra_op_threads": 1.0, "throughput_per_s_c1": 50.0,
           "throughput_c1_precision_pct": 1.0, "throughput_c1_precision_reached": 1.0}
    result = compare([rep(run_id="base", **base)], [rep(**run)])
    assert result.regressions == [] and result.verdict("pass") == "pass"
    changes = {c.metric: c for c in result.changes}
    assert set(changes) == {"p95_latency_ms", "throughput_per_s_c1"}
    for change in changes.values():
        assert (change.change, change.severity) == ("change", "info")
        assert change.note.startswith("measured under other conditions, not compared")
        assert "cores 2 → 1" in change.note and "intra_op_threads 2 → 1" in change.note
    # The same conditions on both sides: the same figures are a major regression.
    same = compare([rep(run_id="base", **base)], [rep(**{**run, "cores": 2.0, "intra_op_threads": 2.0})])
    assert {(c.metric, c.change, c.severity) for c in same.regressions} == {
        ("p95_latency_ms", "regression", "major"), ("throughput_per_s_c1", "regression", "major")}
