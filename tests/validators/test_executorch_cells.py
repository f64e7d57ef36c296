"""Real ExecuTorch cells (executorch 1.5.1 beside torch 2.13 in a venv from the shared env cache, built once per
machine) through the harness: the demo's .pt2 lowered to XNNPACK and to portable kernels, torchvision ResNet-18,
a .pte package whose custom operator the runtime has no kernel for, and the runtime's error texts classified."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.model.build import build_package
from modelcompat.validators.loadability import classify_load_error
from support.executorch_cells import ET_PORTABLE, ET_PTE, ET_XNNPACK
from support.executorch_programs import custom_op_program
from support.extdata import build_corpus
from support.validator_runs import codes, run

CHECKS = ("loadability", "io_contract", "numerical_parity", "determinism", "edge_footprint", "latency")
QUICK_LATENCY = {"latency": {"time_budget_s": 1.0}}


def test_the_demo_lowers_to_xnnpack_and_passes_on_executorch(demo_package) -> None:
    reports = run(demo_package, ET_XNNPACK, CHECKS, QUICK_LATENCY)
    assert {n: r.status.value for n, r in reports.items()} == {n: "pass" for n in CHECKS}, \
        {n: [f.message for f in r.findings] for n, r in reports.items()}
    assert all(r.runtime_version == "executorch 1.5.1" for r in reports.values())
    load = reports["loadability"]
    # The lowering is part of the cell: every op of the MLP went to one XNNPACK partition, none to portable kernels.
    assert load.metrics["delegate_partitions"] == 1 and load.metrics["delegated_ops"] >= 3
    assert load.metrics["portable_ops"] == 0 and load.metrics["lowering_time_ms"] > 0
    (lowered,) = [f for f in load.findings if f.code == "loadability.lowered"]
    assert "lowered with executorch 1.5.1 for xnnpack" in lowered.message and "XnnpackBackend" in lowered.message
    # The .pt2's dynamic batch stays dynamic (the .pte's metadata holds only its upper bound, 65536).
    assert reports["io_contract"].status == "pass"
    assert reports["numerical_parity"].metrics["max_abs_diff"] < 1e-5
    footprint = reports["edge_footprint"]
    assert 0 < footprint.metrics["program_bytes"] < 1 << 20 and footprint.metrics["program_rss_mb"] > 0
    assert footprint.metrics["delegated_ops"] == load.metrics["delegated_ops"]
    assert reports["latency"].metrics["samples"] > 0


def test_the_portable_backend_runs_every_op_on_portable_kernels(demo_package) -> None:
    reports = run(demo_package, ET_PORTABLE, ("loadability", "numerical_parity", "edge_footprint"))
    assert {n: r.status.value for n, r in reports.items()} == {n: "pass" for n in reports}
    load = reports["loadability"]
    assert load.metrics["delegate_partitions"] == 0 and load.metrics["delegated_ops"] == 0
    assert load.metrics["portable_ops"] >= 3
    assert "0 ops in 0 partition(s) of no delegate" in next(f.message for f in load.findings)
    assert "skipped" == run(demo_package, ET_PTE, ("loadability",))["loadability"].status.value  # no .pte in it


def test_a_torchvision_resnet18_lowers_to_xnnpack_and_matches_torch(tmp_path: Path) -> None:
    """ResNet-18 with random weights, exported by .venv-corpus's torch 2.14 (torch.export.save), lowered by the
    cell's executorch on torch 2.13: all of it in one XNNPACK partition, outputs within the manifest's tolerances
    of eager torch's."""
    corpus = build_corpus(["resnet18_torch"], tmp_path / "corpus")
    folder = corpus / "resnet18_torch"
    pkg = build_package([folder / "model.pt2"], folder / "inputs.npz", tmp_path / "pkg", name="resnet18", version="1")
    reports = run(pkg, ET_XNNPACK, ("loadability", "io_contract", "numerical_parity"))
    assert {n: r.status.value for n, r in reports.items()} == {n: "pass" for n in reports}, \
        {n: [f.message for f in r.findings] for n, r in reports.items()}
    load = reports["loadability"]
    assert load.metrics["delegated_ops"] > 50 and load.metrics["portable_ops"] == 0
    assert load.metrics["program_bytes"] > 40e6  # 11.7 M fp32 weights


def test_a_missing_operator_fails_loadability_naming_it(tmp_path: Path) -> None:
    """A .pte packaged as it is (detected from its flatbuffer identifier, never run on the host) whose custom op
    the runtime was built without: the runtime's OperatorMissing, with the operator it logged, is the finding."""
    pte, inputs, reference = custom_op_program(tmp_path / "src")
    pkg = build_package([pte], inputs, tmp_path / "pkg", name="custom-op", version="1", reference=reference)
    artifact = pkg.artifact("executorch")
    assert artifact is not None and artifact.path == "model.pte"
    reports = run(pkg, ET_PTE, ("integrity", "loadability", "io_contract", "numerical_parity", "edge_footprint"))
    assert reports["integrity"].status == "pass"
    load = reports["loadability"]
    assert load.status == "fail"
    (finding,) = load.findings
    assert finding.code == "loadability.missing_operator"
    assert "OperatorMissing (0x14)" in finding.message and "missing operators: mcdemo::shrink.out" in finding.message
    assert "no kernel for mcdemo::shrink.out" in finding.remediation
    for name in ("io_contract", "numerical_parity", "edge_footprint"):
        assert reports[name].status == "skipped" and f"{name}.blocked" in codes(reports[name])
    # The xnnpack/portable cells lower a .pt2, which this package does not hold.
    assert "no pt2 artifact" in run(pkg, ET_XNNPACK, ("loadability",))["loadability"].findings[0].message


@pytest.mark.parametrize(("text", "code"), [
    ("ExecutorchError: ExecuTorch load_method forward failed: Failed to load method forward, error: 0x:14; "
     "OperatorMissing (0x14); missing operators: mcdemo::shrink.out", "missing_operator"),
    ("ExecutorchError: ExecuTorch load_method forward failed: Failed to load method forward, error: 0x:30; "
     "DelegateInvalidCompatibility (0x30)", "delegate_incompatible"),
    ("ExecutorchError: ExecuTorch load_program failed: Failed to load program, error: 0x:23; InvalidProgram (0x23)",
     "invalid_program"),
    ("SpecViolationError: Operator torch._ops.aten.foo.default is not an Aten Canonical operator", "lowering_failed"),
])
def test_executorch_error_texts_are_classified(text: str, code: str) -> None:
    assert classify_load_error(text)[0] == code
