"""`numerical_parity`: outputs on the payload agree with the package's reference outputs within tolerance."""
from __future__ import annotations

import numpy as np
from pydantic import Field

from modelcompat.cells import Cell
from modelcompat.package import ModelPackage
from modelcompat.report import Finding, Outcome, Severity
from modelcompat.validators.base import Params, ValidationContext, Validator


class NumericalParityParams(Params):
    atol: float | None = Field(None, ge=0, description="Absolute tolerance; default: the manifest's.")
    rtol: float | None = Field(None, ge=0, description="Relative tolerance; default: the manifest's.")


def compare(actual: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """max/mean absolute and max relative error of `actual` against `expected` (in float64)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    diff = np.abs(a - e)
    if diff.size == 0:
        return {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "max_rel_diff": 0.0}
    rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    return {"max_abs_diff": float(np.nanmax(diff)), "mean_abs_diff": float(np.nanmean(diff)),
            "max_rel_diff": float(np.nanmax(rel))}


class NumericalParity(Validator):
    name = "numerical_parity"
    version = "1"
    description = "Outputs on the payload match the reference outputs: max abs / max rel / mean error per output, against atol/rtol."
    Params = NumericalParityParams
    inputs = ("artifact", "manifest.tolerances", "payload", "reference", "runtime", "hardware", "backend")

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        if package.manifest.reference is None:
            return "the package has no reference outputs (add them with `modelcompat package --reference`)"
        return super().applies_to(cell, package)

    def validate(self, ctx: ValidationContext, params: NumericalParityParams) -> Outcome:
        manifest = ctx.package.manifest
        outputs = ctx.run_payload()
        findings: list[Finding] = []
        worst: dict[str, float] = {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "max_rel_diff": 0.0}
        with np.load(ctx.package.resolve(manifest.reference), allow_pickle=False) as reference:
            for name in reference.files:
                tol = manifest.tolerances.for_output(name)
                atol = tol.atol if params.atol is None else params.atol
                rtol = tol.rtol if params.rtol is None else params.rtol
                expected = reference[name]
                if name not in outputs:
                    findings.append(Finding(code="numerical_parity.output_missing", severity=Severity.ERROR,
                                            step="compare", message=f"the runtime produced no output {name!r}",
                                            expected=name, observed=", ".join(outputs),
                                            remediation="see the io_contract report of this cell"))
                    continue
                actual = outputs[name]
                if actual.shape != expected.shape:
                    findings.append(Finding(code="numerical_parity.shape_mismatch", severity=Severity.ERROR,
                                            step="compare", message=f"output {name!r} has shape {actual.shape}, "
                                            f"the reference {expected.shape}", observed=str(actual.shape),
                                            expected=str(expected.shape), remediation="see the io_contract report"))
                    continue
                stats = compare(actual, expected)
                for key, value in stats.items():
                    worst[key] = max(worst[key], value)
                non_finite = int(np.size(actual) - np.count_nonzero(np.isfinite(np.asarray(actual, dtype=np.float64))))
                ok = np.allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                                 atol=atol, rtol=rtol, equal_nan=True)
                if non_finite and np.all(np.isfinite(expected)):
                    ok = False
                if not ok:
                    findings.append(Finding(
                        code="numerical_parity.tolerance_exceeded", severity=Severity.ERROR, step="compare",
                        message=f"output {name!r} differs from the reference: max abs {stats['max_abs_diff']:.3g}, "
                                f"max rel {stats['max_rel_diff']:.3g} (atol {atol:g}, rtol {rtol:g})"
                                + (f"; {non_finite} non-finite values" if non_finite else ""),
                        observed=f"max_abs_diff={stats['max_abs_diff']:.6g}", expected=f"atol={atol:g}, rtol={rtol:g}",
                        remediation="find the op that diverges (e.g. polygraphy run --onnxrt --validate, or compare "
                                    "layer outputs); if the drift is acceptable for this backend, set a per-output "
                                    "tolerance in the manifest"))
        return Outcome(metrics=worst, findings=findings)
