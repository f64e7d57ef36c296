"""`determinism` on real models: the demo is bit-identical; models that sample at inference are caught."""
from __future__ import annotations

import pytest

from support.badmodels import (
    nodes_random_noise,
    with_noisy_torchscript,
    with_onnx_graph,
)
from support.pkgvariants import HOST_ORT, TORCHSCRIPT, variant
from support.validator_runs import codes, run


def _unchanged(folder, manifest) -> None:
    pass


CASES = [
    # defect,                              edit,                                        cell,    status, codes
    ("demo (onnxruntime)", _unchanged, HOST_ORT, "pass", set()),
    ("demo (torchscript)", _unchanged, TORCHSCRIPT, "pass", set()),
    ("RandomUniformLike in the graph", with_onnx_graph(nodes_random_noise(), 16, "probabilities"), HOST_ORT,
     "fail", {"determinism.nondeterministic"}),
    ("torch.rand_like in forward", with_noisy_torchscript(1.0), TORCHSCRIPT, "fail", {"determinism.nondeterministic"}),
    # Noise of 1e-7 stays inside the manifest's atol 1e-5: not bit-identical, but within tolerance.
    ("tiny noise within tolerance", with_noisy_torchscript(1e-7), TORCHSCRIPT, "warn", {"determinism.nondeterministic"}),
]


@pytest.mark.parametrize(("defect", "edit", "cell", "status", "expected_codes"), CASES, ids=[c[0] for c in CASES])
def test_determinism(demo_package, tmp_path, defect, edit, cell, status, expected_codes) -> None:
    package = variant(demo_package, tmp_path / "pkg", edit)
    report = run(package, cell, ("determinism",))["determinism"]
    assert report.status.value == status, report.findings
    assert codes(report) == expected_codes
    assert report.metrics["threads"] >= 2
    if status == "pass":
        assert report.metrics["max_abs_diff_repeat"] == 0.0
        assert report.metrics["max_abs_diff_threads"] == 0.0
    else:
        assert report.metrics["max_abs_diff_repeat"] > 0.0
        repeat = [f for f in report.findings if f.step == "repeat"]
        assert repeat and all(f.remediation and "random" in f.remediation for f in repeat)
    if status == "fail":
        assert report.metrics["max_abs_diff_repeat"] > 1e-3


def test_determinism_does_not_leave_the_probe_on_its_variant_load(demo_package) -> None:
    """After determinism's 1-thread/N-thread loads, the next validator runs the package's model as usual."""
    reports = run(demo_package, HOST_ORT, ("determinism", "numerical_parity"))
    assert reports["determinism"].status.value == "pass"
    assert reports["numerical_parity"].status.value == "pass"
    assert reports["numerical_parity"].metrics["max_abs_diff"] < 1e-5
