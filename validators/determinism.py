"""`determinism`: the same payload twice, and at 1 vs N intra-op threads, gives the same outputs.

Pass when bit-identical; warn when not bit-identical but within the output's tolerance (the same
precision-aware tolerance numerical_parity uses); fail beyond it.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from pydantic import Field

from modelcompat.validators import Finding, Outcome, Params, Severity, ValidationContext, Validator
from modelcompat.validators.numerical_parity import align, effective_precision, tolerance_for


class DeterminismParams(Params):
    threads: int | None = Field(None, ge=2, description="Intra-op thread count compared with 1 thread; "
                                "default: the machine's CPU count (at least 2).")
    check_threads: bool = Field(True, description="Also compare outputs at 1 vs `threads` intra-op threads.")


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """(max abs diff over positions finite in both, whether a and b are bit-identical incl. NaN positions)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return float("inf"), False
    identical = a.tobytes() == b.tobytes()
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = np.isfinite(a64) & np.isfinite(b64)
    diff = float(np.max(np.abs(a64[both] - b64[both]))) if np.any(both) else 0.0
    if not np.array_equal(~np.isfinite(a64), ~np.isfinite(b64)) or not np.array_equal(a64[~both], b64[~both],
                                                                                          equal_nan=True):
        diff = float("inf")  # NaN/Inf in different places: no tolerance covers that
    return diff, identical


def _pairs(a_out: dict[str, Any], b_out: dict[str, Any]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(output, a, b) leaf arrays to compare: sequences and maps leaf by leaf (named `output[...]`); a changed
    structure pairs as a difference no tolerance covers; strings compare as equal or infinitely apart."""
    pairs: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name, a_value in a_out.items():
        if name not in b_out:
            continue
        leaves, problems = align(b_out[name], a_value, name)
        if problems:
            leaves = [(name, np.full(1, np.inf), np.zeros(1))]
        for path, b, a in leaves:
            if a.dtype.kind in "USO" or b.dtype.kind in "USO":
                same = np.array_equal(a.astype(str), b.astype(str))
                a, b = np.zeros(1), np.zeros(1) if same else np.full(1, np.inf)
            pairs.append((name if path == name else path, a, b))
    return pairs


class Determinism(Validator):
    name = "determinism"
    version = "1"
    description = ("The same payload run twice, and at 1 vs N intra-op threads, gives bit-identical outputs "
                   "(warn: within tolerance only; fail: beyond it).")
    Params = DeterminismParams
    inputs = ("artifact", "manifest.tolerances", "payload", "runtime", "hardware", "backend")
    reloads_model = True  # see Validator.reloads_model

    def validate(self, ctx: ValidationContext, params: DeterminismParams) -> Outcome:
        manifest = ctx.package.manifest
        threads = params.threads or max(2, os.cpu_count() or 1)
        loaded = ctx.load_variant(intra_op_threads=1)
        first = ctx.run_loaded("determinism-1t-a")
        second = ctx.run_loaded("determinism-1t-b")
        comparisons = [("repeat", "the same payload run twice (1 thread)", first, second)]
        if params.check_threads:
            ctx.load_variant(intra_op_threads=threads)
            many = ctx.run_loaded(f"determinism-{threads}t")
            comparisons.append(("threads", f"1 vs {threads} intra-op threads", first, many))
        metrics: dict[str, float] = {"threads": float(threads)}
        findings: list[Finding] = []
        for kind, what, a_out, b_out in comparisons:
            worst = 0.0
            for name, a, b in _pairs(a_out, b_out):
                diff, identical = _diff(a, b)
                worst = max(worst, diff)
                if identical:
                    continue
                tol, _ = tolerance_for(manifest, name.split("[")[0], effective_precision(ctx.cell.backend.precision, str(a.dtype)))
                within = np.isfinite(diff) and np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                                           atol=tol.atol, rtol=tol.rtol, equal_nan=True)
                findings.append(Finding(
                    code="determinism.nondeterministic", severity=Severity.WARN if within else Severity.ERROR,
                    step=kind,
                    message=f"output {name if '[' in name else repr(name)} differs between {what}: max abs diff {diff:.3g} "
                            + ("(within tolerance, not bit-identical)" if within else
                               f"(beyond atol {tol.atol:g}, rtol {tol.rtol:g})"),
                    observed=f"max_abs_diff_{kind}={diff:.6g}", expected=f"identical (atol={tol.atol:g}, rtol={tol.rtol:g})",
                    remediation=("the model draws random numbers at inference (dropout left in training mode, "
                                 "rand/RandomUniform ops): export in eval mode and remove sampling from the graph, "
                                 "or seed it explicitly" if kind == "repeat" else
                                 "parallel reductions change the summation order: pin intra_op_num_threads in "
                                 "serving, or accept the drift with a per-output tolerance")))
            metrics[f"max_abs_diff_{kind}"] = worst if np.isfinite(worst) else 1e300
        return Outcome(metrics=metrics, findings=findings, runtime_version=loaded.get("runtime_version"))
