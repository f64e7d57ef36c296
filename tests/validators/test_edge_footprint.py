"""`edge_footprint` on a real ExecuTorch cell: the program's size and the memory it adds to a fresh runtime process,
against the manifest's edge budgets; other families' cells skip it; the budgets are validated with the manifest."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.errors import InputError
from modelcompat.model.build import build_package
from modelcompat.validators.edge_footprint import EdgeFootprint
from support.executorch_cells import ET_PORTABLE
from support.pkgvariants import HOST_ORT
from support.validator_runs import codes, run


def _demo_pt2(demo_package, tmp_path: Path, budgets: dict):
    pt2 = demo_package.resolve(demo_package.artifact("pt2").path)
    payload = demo_package.resolve(demo_package.manifest.payload)
    return build_package([pt2], payload, tmp_path / "pkg", name="demo-edge", version="1", budgets=budgets)


def test_edge_budgets_exceeded_fail_with_the_measure_and_a_fix(demo_package, tmp_path: Path) -> None:
    pkg = _demo_pt2(demo_package, tmp_path, {"max_program_bytes": 1000, "max_rss_mb": 0.001})
    report = run(pkg, ET_PORTABLE, ("edge_footprint",))["edge_footprint"]
    assert report.status == "fail"
    assert codes(report) == {"edge_footprint.lowered", "edge_footprint.program_too_large",
                             "edge_footprint.memory_exceeded"}
    size = next(f for f in report.findings if f.code == "edge_footprint.program_too_large")
    assert report.metrics["program_bytes"] > 1000
    assert size.observed == f"program_bytes={int(report.metrics['program_bytes'])}"
    assert size.expected == "max_program_bytes<=1000" and "quantize" in size.remediation
    memory = next(f for f in report.findings if f.code == "edge_footprint.memory_exceeded")
    assert report.metrics["program_rss_mb"] > 0.001 and "fresh ExecuTorch runtime process" in memory.message
    assert "max_rss_mb" in memory.remediation
    # The peak is the fresh process's, the program's share is what it added after the runtime's imports.
    assert report.metrics["peak_rss_mb"] >= report.metrics["baseline_rss_mb"] + report.metrics["program_rss_mb"] - 1e-6


def test_within_the_edge_budgets_it_passes(demo_package, tmp_path: Path) -> None:
    pkg = _demo_pt2(demo_package, tmp_path, {"max_program_bytes": 10_000_000, "max_rss_mb": 4096})
    report = run(pkg, ET_PORTABLE, ("edge_footprint",))["edge_footprint"]
    assert report.status == "pass" and codes(report) == {"edge_footprint.lowered"}


def test_other_families_cells_skip_it(demo_package) -> None:
    reason = EdgeFootprint().applies_to(HOST_ORT, demo_package)
    assert reason == "edge budgets are checked on ExecuTorch cells; runtime host-ort is onnxruntime"


@pytest.mark.parametrize("budgets", [{"max_program_bytes": 0}, {"max_rss_mb": -1}, {"max_program_bytes": "big"}])
def test_bad_edge_budgets_are_refused_naming_the_field(demo_package, tmp_path: Path, budgets: dict) -> None:
    with pytest.raises(InputError) as info:
        _demo_pt2(demo_package, tmp_path, budgets)
    assert next(iter(budgets)) in str(info.value)
