"""`numerical_parity` deepened: precision-aware tolerances, per-output overrides, min passing atol, warn vs fail."""
from __future__ import annotations

import numpy as np
import pytest

from modelcompat.matrix.cells import BackendSpec
from modelcompat.model.package import Manifest
from modelcompat.validators.numerical_parity import min_passing_atol, tolerance_for
from support.badmodels import with_fp16_overflow
from support.pkgvariants import HOST_ORT, TORCH_EAGER, scale_reference, variant
from support.validator_runs import codes, run

TORCH_FP16 = TORCH_EAGER.model_copy(update={"backend": BackendSpec(id="torch-eager-fp16", runtime="torch",
                                                                   mode="eager", precision="fp16")})


def _unchanged(folder, manifest) -> None:
    pass


def _per_output(atol: float, rtol: float):
    def edit(folder, manifest) -> None:
        manifest["tolerances"]["per_output"] = {"probabilities": {"atol": atol, "rtol": rtol}}
    return edit


def _no_semantics(folder, manifest) -> None:
    for output in manifest["contract"]["outputs"]:
        output.pop("semantics", None)


def _predictions_changed(folder, manifest) -> None:
    """The reference's class scores reversed per row: the cell's top-1 disagrees on (almost) every row."""
    from modelcompat.model.values import load_values, save_values

    path = folder / manifest["reference"]
    values = load_values(path)
    values["probabilities"] = values["probabilities"][:, ::-1].copy()
    save_values(path, values)


CASES = [
    # what,                                             edit, cell, params, status, codes
    ("demo at fp16 passes fp16's default tolerance", _unchanged, TORCH_FP16, {}, "pass", set()),
    # The demo declares `probabilities`: fp16 drift beyond fp32's 1e-5 whose top-1 predictions all agree is a
    # graded warning with the figures; without a declared meaning it stays a fail.
    ("demo at fp16 held to fp32's 1e-5 warns: predictions agree", _unchanged, TORCH_FP16,
     {"atol": 1e-5, "rtol": 1e-4}, "warn", {"numerical_parity.predictions_agree"}),
    ("without semantics, fp16 held to fp32's 1e-5 fails", _no_semantics, TORCH_FP16,
     {"atol": 1e-5, "rtol": 1e-4}, "fail", {"numerical_parity.tolerance_exceeded"}),
    ("a strict per-output override is not loosened by fp16", _per_output(1e-6, 0.0), TORCH_FP16, {}, "warn",
     {"numerical_parity.predictions_agree"}),
    ("drift that changes top-1 predictions is a fail", _predictions_changed, HOST_ORT, {}, "fail",
     {"numerical_parity.tolerance_exceeded", "numerical_parity.predictions_changed"}),
    ("a per-output override accepts a known drift", lambda f, m: (scale_reference(1.05)(f, m), _per_output(0.1, 0)(f, m)),
     HOST_ORT, {}, "pass", set()),
    ("fp16 overflow (intermediate > 65504)", with_fp16_overflow, TORCH_FP16, {}, "fail",
     {"numerical_parity.non_finite"}),
    ("the same model at fp32", with_fp16_overflow, TORCH_EAGER, {}, "pass", set()),
]


@pytest.mark.parametrize(("what", "edit", "cell", "params", "status", "expected_codes"), CASES,
                         ids=[c[0] for c in CASES])
def test_numerical_parity(demo_package, tmp_path, what, edit, cell, params, status, expected_codes) -> None:
    package = variant(demo_package, tmp_path / "pkg", edit)
    report = run(package, cell, ("numerical_parity",), params={"numerical_parity": params})["numerical_parity"]
    assert report.status.value == status, report.findings
    assert codes(report) == expected_codes
    assert all(np.isfinite(v) for v in report.metrics.values())
    if expected_codes == {"numerical_parity.non_finite"}:
        assert report.metrics["non_finite_values"] > 0 and "min_passing_atol" not in report.metrics
        assert "65504" in report.findings[0].remediation
    if cell is TORCH_FP16 and not params and status == "pass":
        assert report.metrics["max_abs_diff"] > 1e-5  # fp16 really drifts past fp32's tolerance


def test_min_passing_atol_is_the_boundary(demo_package, tmp_path) -> None:
    """The reported atol passes when used (at the same rtol), and a slightly smaller one fails."""
    package = variant(demo_package, tmp_path / "pkg", lambda f, m: (scale_reference(1.05)(f, m), _no_semantics(f, m)))  # tensors only
    first = run(package, HOST_ORT, ("numerical_parity",), params={"numerical_parity": {"rtol": 0.0}})
    needed = first["numerical_parity"].metrics["min_passing_atol"]
    assert first["numerical_parity"].status.value == "fail" and needed > 1e-3
    assert f"{needed:.3g}" in first["numerical_parity"].findings[0].message
    ok = run(package, HOST_ORT, ("numerical_parity",), params={"numerical_parity": {"atol": needed * 1.0001,
                                                                                     "rtol": 0.0}})
    assert ok["numerical_parity"].status.value in ("pass", "warn")
    tight = run(package, HOST_ORT, ("numerical_parity",), params={"numerical_parity": {"atol": needed * 0.99,
                                                                                        "rtol": 0.0}})
    assert tight["numerical_parity"].status.value == "fail"


@pytest.mark.parametrize(("fraction", "status"), [(0.75, "warn"), (0.25, "pass")])
def test_warn_above_half_the_tolerance(demo_package, tmp_path, fraction, status) -> None:
    package = variant(demo_package, tmp_path / "pkg", scale_reference(1.05))
    needed = run(package, HOST_ORT, ("numerical_parity",),
                 params={"numerical_parity": {"rtol": 0.0}})["numerical_parity"].metrics["min_passing_atol"]
    report = run(package, HOST_ORT, ("numerical_parity",),
                 params={"numerical_parity": {"atol": needed / fraction, "rtol": 0.0}})["numerical_parity"]
    assert report.status.value == status, report.findings
    assert report.metrics["tolerance_used"] == pytest.approx(fraction, rel=1e-6)
    assert codes(report) == ({"numerical_parity.near_tolerance"} if status == "warn" else set())


def test_tolerance_rules() -> None:
    manifest = Manifest.model_validate({
        "name": "m", "version": "1", "artifacts": [{"format": "onnx", "path": "m.onnx", "sha256": "0" * 64}],
        "contract": {"inputs": [{"name": "x", "dtype": "float32", "shape": [1]}],
                     "outputs": [{"name": "y", "dtype": "float32", "shape": [1]}]},
        "payload": "p.npz", "tolerances": {"atol": 1e-5, "rtol": 1e-4, "per_output": {"z": {"atol": 1e-7, "rtol": 0}}}})
    assert tolerance_for(manifest, "y", "fp32")[0].atol == 1e-5
    assert tolerance_for(manifest, "y", "fp16")[0].atol == 1e-2
    assert tolerance_for(manifest, "y", "bf16")[0].atol > tolerance_for(manifest, "y", "fp16")[0].atol
    assert tolerance_for(manifest, "z", "fp16")[0].atol == 1e-7
    assert min_passing_atol(np.array([1.0, 2.5]), np.array([1.0, 2.0]), rtol=0.1) == pytest.approx(0.3)
    assert min_passing_atol(np.array([np.inf]), np.array([1.0]), rtol=0.1) is None
