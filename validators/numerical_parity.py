"""`numerical_parity`: outputs on the payload agree with the package's reference outputs within tolerance.

Tolerances depend on precision: a backend running at fp16/bf16/int8 (or an output of that dtype) is not
held to fp32's 1e-5. Fail beyond tolerance, warn above half of it, and always report the smallest atol
that would have passed.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from modelcompat.validators import (
    Cell,
    Finding,
    Manifest,
    ModelPackage,
    Outcome,
    Params,
    Severity,
    Tolerance,
    ValidationContext,
    Validator,
)

# Floors applied on top of the manifest's global tolerance when the backend or the output runs at a lower
# precision: fp16 has a 2^-11 unit roundoff (≈ 5e-4) that accumulates over layers; bf16 has 2^-8 (≈ 4e-3).
PRECISION_FLOORS: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=0.0, rtol=0.0),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2),
    "bf16": Tolerance(atol=5e-2, rtol=5e-2),
    "int8": Tolerance(atol=1e-1, rtol=1e-1),
}
_DTYPE_PRECISION = {"float16": "fp16", "bfloat16": "bf16", "int8": "int8", "uint8": "int8"}
# Grading: above this fraction of the tolerance the output passes but is reported as close to failing.
WARN_FRACTION = 0.5


class NumericalParityParams(Params):
    atol: float | None = Field(None, ge=0, description="Absolute tolerance for every output; default: the "
                               "manifest's, raised to the precision's floor (fp16 1e-2, bf16 5e-2, int8 1e-1).")
    rtol: float | None = Field(None, ge=0, description="Relative tolerance for every output; default as atol.")


def effective_precision(backend_precision: str, dtype: str | None = None) -> str:
    """The lower of the backend's precision and the output dtype's (a float16 output is fp16 anywhere)."""
    order = ["fp32", "fp16", "bf16", "int8"]
    by_dtype = _DTYPE_PRECISION.get(dtype or "", "fp32")
    return max(backend_precision, by_dtype, key=order.index)


def tolerance_for(manifest: Manifest, output: str, precision: str) -> tuple[Tolerance, str]:
    """(tolerance, where it came from) for one output at an effective precision.

    A per-output override in the manifest is taken as written (the author chose it for that output);
    otherwise the manifest's global tolerance, raised to the precision's floor.
    """
    if output in manifest.tolerances.per_output:
        return manifest.tolerances.per_output[output], "manifest per_output"
    base = manifest.tolerances.for_output(output)
    floor = PRECISION_FLOORS[precision]
    if floor.atol <= base.atol and floor.rtol <= base.rtol:
        return base, "manifest"
    return Tolerance(atol=max(base.atol, floor.atol), rtol=max(base.rtol, floor.rtol)), f"{precision} default"


def compare(actual: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """max/mean absolute and max relative error of `actual` against `expected` (in float64).

    Over the positions finite in both (NaN/Inf are counted separately), so the metrics stay finite numbers.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(e)
    a, e = a[finite], e[finite]
    diff = np.abs(a - e)
    if diff.size == 0:
        return {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "max_rel_diff": 0.0}
    rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    return {"max_abs_diff": float(np.nanmax(diff)), "mean_abs_diff": float(np.nanmean(diff)),
            "max_rel_diff": float(np.nanmax(rel))}


def min_passing_atol(actual: np.ndarray, expected: np.ndarray, rtol: float) -> float | None:
    """Smallest atol for which allclose(actual, expected, atol, rtol) holds; None if none does (non-finite)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0
    same_nan = np.isnan(a) & np.isnan(e)
    same_inf = np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e))
    settled = same_nan | same_inf
    if not np.all(np.isfinite(a) | settled) or not np.all(np.isfinite(e) | settled):
        return None
    need = np.where(settled, 0.0, np.abs(a - e) - rtol * np.abs(np.where(settled, 0.0, e)))
    return float(max(0.0, np.max(need)))


def tolerance_used(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> float:
    """max over elements of |a - e| / (atol + rtol |e|): 1.0 is exactly at the limit (inf if the limit is 0)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(e)
    if not np.any(finite):
        return 0.0
    diff = np.abs(a[finite] - e[finite])
    limit = atol + rtol * np.abs(e[finite])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / limit)
    return float(np.max(ratio))


class NumericalParity(Validator):
    name = "numerical_parity"
    version = "2"
    description = ("Outputs on the payload match the reference outputs: max abs / max rel / mean error per output, "
                   "against precision-aware atol/rtol; reports the smallest atol that would pass.")
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
        worst: dict[str, float] = {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "max_rel_diff": 0.0,
                                   "min_passing_atol": 0.0, "tolerance_used": 0.0, "non_finite_values": 0.0}
        unreachable = False
        with np.load(ctx.package.resolve(manifest.reference), allow_pickle=False) as reference:
            for name in reference.files:
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
                precision = effective_precision(ctx.cell.backend.precision, str(actual.dtype))
                tol, source = tolerance_for(manifest, name, precision)
                atol = tol.atol if params.atol is None else params.atol
                rtol = tol.rtol if params.rtol is None else params.rtol
                if params.atol is not None or params.rtol is not None:
                    source = "params"
                stats = compare(actual, expected)
                for key, value in stats.items():
                    worst[key] = max(worst[key], value)
                a64, e64 = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
                new_non_finite = int(np.count_nonzero(~np.isfinite(a64) & np.isfinite(e64)))
                worst["non_finite_values"] += new_non_finite
                needed = min_passing_atol(actual, expected, rtol)
                if needed is None:
                    unreachable = True
                else:
                    worst["min_passing_atol"] = max(worst["min_passing_atol"], needed)
                used = tolerance_used(actual, expected, atol, rtol)
                worst["tolerance_used"] = max(worst["tolerance_used"], used if np.isfinite(used) else 1e300)
                where = f"(atol {atol:g}, rtol {rtol:g} from {source}, {precision})"
                if new_non_finite:
                    findings.append(Finding(
                        code="numerical_parity.non_finite", severity=Severity.ERROR, step="compare",
                        message=f"output {name!r} has {new_non_finite} NaN/Inf values where the reference is finite "
                                f"{where}",
                        observed=f"non_finite_values={new_non_finite}", expected="finite values",
                        remediation=("an intermediate overflows the backend's precision (fp16 saturates at 65504): "
                                     "keep the overflowing ops in fp32 (mixed precision / op block list), rescale "
                                     "the inputs or weights, or run this model at fp32/bf16")
                        if precision in ("fp16", "bf16", "int8") else
                        "find the op that produces NaN/Inf (e.g. polygraphy run --onnxrt --validate)"))
                    continue
                ok = np.allclose(a64, e64, atol=atol, rtol=rtol, equal_nan=True)
                passing = "no atol passes" if needed is None else f"atol ≥ {needed:.3g} would pass at rtol {rtol:g}"
                if not ok:
                    findings.append(Finding(
                        code="numerical_parity.tolerance_exceeded", severity=Severity.ERROR, step="compare",
                        message=f"output {name!r} differs from the reference: max abs {stats['max_abs_diff']:.3g}, "
                                f"max rel {stats['max_rel_diff']:.3g} {where}; {passing}",
                        observed=f"max_abs_diff={stats['max_abs_diff']:.6g}", expected=f"atol={atol:g}, rtol={rtol:g}",
                        remediation="find the op that diverges (e.g. polygraphy run --onnxrt --validate, or compare "
                                    "layer outputs); if the drift is acceptable for this backend, set a per-output "
                                    "tolerance in the manifest (tolerances.per_output)"))
                elif used > WARN_FRACTION:
                    findings.append(Finding(
                        code="numerical_parity.near_tolerance", severity=Severity.WARN, step="compare",
                        message=f"output {name!r} passes but uses {used:.0%} of its tolerance {where}; {passing}",
                        observed=f"tolerance_used={used:.3g}", expected=f"≤ {WARN_FRACTION:g}",
                        remediation="a small runtime or backend change may push it over: check which op drifts, "
                                    "or widen the per-output tolerance deliberately"))
        if unreachable:
            del worst["min_passing_atol"]  # no finite atol passes; the findings say so
        return Outcome(metrics=worst, findings=findings)
