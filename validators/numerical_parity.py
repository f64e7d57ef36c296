"""`numerical_parity`: outputs on the payload agree with the package's reference outputs within tolerance.

Tolerances depend on precision: a backend running at fp16/bf16/int8 (or an output of that dtype) is not
held to fp32's 1e-5. Fail beyond tolerance, warn above half of it, and always report the smallest atol
that would have passed. Sequences and maps are compared element by element and key by key (a missing or
extra key, or a length change, is a finding). Outputs whose meaning the contract declares (`logits`,
`probabilities`, `labels`, `embedding`) are also graded on predictions: top-1/top-k agreement or cosine
similarity. Drift beyond tolerance whose predictions agree is a `warn` only where lower precision explains it
(an fp16/bf16/int8 backend, a float16 output, or a quantized graph); at fp32 nothing does, so such a miss stays
a `fail` (a large miss is never downgraded). Changed predictions are a `fail` everywhere.
Every payload of the package (`payloads:`) is compared with its own reference.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from modelcompat.model.package import PREDICTION_SEMANTICS, TensorSpec
from modelcompat.model.types import type_of
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
from modelcompat.validators.payload_runs import run_payloads

# Floors applied on top of the manifest's global tolerance when the backend or the output runs at a lower
# precision: fp16 has a 2^-11 unit roundoff (≈ 5e-4) that accumulates over layers; bf16 has 2^-8 (≈ 4e-3).
PRECISION_FLOORS: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=0.0, rtol=0.0),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2),
    "bf16": Tolerance(atol=5e-2, rtol=5e-2),
    "int8": Tolerance(atol=1e-1, rtol=1e-1),
}
_DTYPE_PRECISION = {"float16": "fp16", "bfloat16": "bf16", "int8": "int8", "uint8": "int8"}
# Ops that make a graph quantized: its outputs carry int8 rounding even when their dtype is float32.
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
                           "QLinearMatMul", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "QAttention",
                           "QLinearAdd", "QLinearMul", "QGemm"})
# Grading: above this fraction of the tolerance the output passes but is reported as close to failing.
WARN_FRACTION = 0.5


class NumericalParityParams(Params):
    atol: float | None = Field(None, ge=0, description="Absolute tolerance for every output; default: the "
                               "manifest's, raised to the precision's floor (fp16 1e-2, bf16 5e-2, int8 1e-1).")
    rtol: float | None = Field(None, ge=0, description="Relative tolerance for every output; default as atol.")
    min_top1_agreement: float = Field(0.99, ge=0, le=1, description="Drift beyond tolerance is only a warning "
                                      "when at least this fraction of top-1 predictions (logits/probabilities/"
                                      "labels outputs) agree with the reference; below it, a fail.")
    min_cosine: float = Field(0.99, ge=-1, le=1, description="Likewise for `embedding` outputs: the smallest "
                              "per-row cosine similarity with the reference that still makes a warning.")
    top_k: int = Field(5, ge=1, description="k of the reported top-k agreement (reference top-1 within the "
                       "cell's top k).")


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


def align(actual: Any, expected: Any, where: str) -> tuple[list[tuple[str, Any, Any]], list[str]]:
    """Leaf pairs (path, actual, expected) of two values, and the structural differences found on the way.

    Sequences pair by position (a length change is a difference), maps by key (missing/extra keys are).
    """
    pairs: list[tuple[str, Any, Any]] = []
    problems: list[str] = []

    def walk(a: Any, e: Any, path: str) -> None:
        if isinstance(e, dict):
            if not isinstance(a, dict):
                problems.append(f"{path} is {type_of(a)}, the reference is {type_of(e)}")
                return
            missing = [k for k in e if k not in a]
            extra = [k for k in a if k not in e]
            if missing:
                problems.append(f"{path} lacks key(s) {missing[:5]} the reference has")
            if extra:
                problems.append(f"{path} has key(s) {extra[:5]} the reference lacks")
            for k in e:
                if k in a:
                    walk(a[k], e[k], f"{path}[{k!r}]")
        elif isinstance(e, (list, tuple)):
            if not isinstance(a, (list, tuple)):
                problems.append(f"{path} is {type_of(a)}, the reference is {type_of(e)}")
                return
            if len(a) != len(e):
                problems.append(f"{path} has {len(a)} elements, the reference {len(e)}")
            for i, (x, y) in enumerate(zip(a, e)):
                walk(x, y, f"{path}[{i}]")
        elif e is None or a is None:
            if (a is None) != (e is None):
                problems.append(f"{path} is {'empty' if a is None else 'present'}, the reference "
                                f"{'empty' if e is None else 'present'}")
        elif isinstance(a, (dict, list, tuple)):
            problems.append(f"{path} is {type_of(a)}, the reference is {type_of(e)}")
        else:
            a, e = np.asarray(a), np.asarray(e)
            if a.shape != e.shape:
                problems.append(f"{path} has shape {a.shape}, the reference {e.shape}")
            else:
                pairs.append((path, a, e))

    walk(actual, expected, where)
    return pairs, problems


def class_scores(value: Any) -> np.ndarray | None:
    """Rows of class scores: a tensor as is (last axis = classes), a sequence of maps as rows by sorted key."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        keys = sorted(value[0])
        try:
            return np.array([[float(row[k]) for k in keys] for row in value], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim >= 1:
        return np.asarray(value, np.float64).reshape(-1, value.shape[-1]) if value.ndim > 1 else None
    return None


def prediction_metrics(semantics: str, actual: Any, expected: Any, top_k: int) -> dict[str, float] | None:
    """top1_agreement (+ topk_agreement) for logits/probabilities/labels, min_cosine for embedding; None if
    the output's shape gives no rows to grade."""
    if semantics == "labels":
        a, e = np.asarray(actual), np.asarray(expected)
        if a.shape != e.shape or a.size == 0:
            return None
        return {"top1_agreement": float(np.mean(a.reshape(-1) == e.reshape(-1)))}
    a_rows, e_rows = class_scores(actual), class_scores(expected)
    if a_rows is None or e_rows is None or a_rows.shape != e_rows.shape or a_rows.size == 0:
        return None
    if semantics == "embedding":
        norms = np.linalg.norm(a_rows, axis=1) * np.linalg.norm(e_rows, axis=1)
        cos = np.where(norms == 0, 1.0, np.sum(a_rows * e_rows, axis=1) / np.maximum(norms, 1e-300))
        return {"min_cosine": float(np.min(cos)), "mean_cosine": float(np.mean(cos))}
    ref_top1 = np.argmax(e_rows, axis=1)
    k = min(top_k, a_rows.shape[1])
    top_k_idx = np.argsort(-a_rows, axis=1, kind="stable")[:, :k]
    return {"top1_agreement": float(np.mean(np.argmax(a_rows, axis=1) == ref_top1)),
            "topk_agreement": float(np.mean(np.any(top_k_idx == ref_top1[:, None], axis=1)))}


class NumericalParity(Validator):
    name = "numerical_parity"
    version = "3"
    description = ("Outputs on each payload match the reference outputs (tensors, sequences, maps): max abs / max "
                   "rel / mean error against precision-aware atol/rtol, the smallest atol that would pass, and "
                   "top-1/top-k agreement or cosine for outputs declared logits/probabilities/labels/embedding.")
    Params = NumericalParityParams
    inputs = ("artifact", "manifest.tolerances", "payload", "reference", "runtime", "hardware", "backend")

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        if package.manifest.reference is None:
            return "the package has no reference outputs (add them with `modelcompat package --reference`)"
        return super().applies_to(cell, package)

    def validate(self, ctx: ValidationContext, params: NumericalParityParams) -> Outcome:
        manifest = ctx.package.manifest
        specs = {t.name: t for t in manifest.contract.outputs}
        findings: list[Finding] = []
        worst: dict[str, float] = {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "max_rel_diff": 0.0,
                                   "min_passing_atol": 0.0, "tolerance_used": 0.0, "non_finite_values": 0.0}
        state = {"unreachable": False}
        runs = run_payloads(ctx)
        for run in runs:
            reference = run.reference(ctx.package)
            at = "" if run.label == "payload" else f" at {run.label} ({run.entry.payload})"
            if reference is None:
                continue
            if run.refused is not None:
                findings.append(Finding(
                    code="numerical_parity.run_refused", severity=Severity.ERROR, step="compare",
                    message=f"the runtime refused {run.label} ({run.entry.payload}): {run.refused.error_type}: "
                            f"{run.refused.message[:300]}", observed=run.refused.error_type,
                    expected="outputs", remediation="see io_contract.dynamic_axis_broken for this cell"))
                continue
            outputs = run.outputs or {}
            for name, expected in reference.items():
                if name not in outputs:
                    findings.append(Finding(code="numerical_parity.output_missing", severity=Severity.ERROR,
                                            step="compare", message=f"the runtime produced no output {name!r}{at}",
                                            expected=name, observed=", ".join(outputs),
                                            remediation="see the io_contract report of this cell"))
                    continue
                findings += self._compare_output(ctx, params, specs.get(name), name, outputs[name], expected, at,
                                                 worst, state)
        if state["unreachable"]:
            del worst["min_passing_atol"]  # no finite atol passes; the findings say so
        if len(runs) > 1:
            worst["payloads_checked"] = float(len(runs))
        return Outcome(metrics=worst, findings=findings)

    def _compare_output(self, ctx: ValidationContext, params: NumericalParityParams, spec: TensorSpec | None,
                        name: str, actual: Any, expected: Any, at: str, worst: dict[str, float],
                        state: dict[str, bool]) -> list[Finding]:
        manifest = ctx.package.manifest
        findings: list[Finding] = []
        pairs, problems = align(actual, expected, f"output {name!r}")
        if problems:
            tensor = isinstance(expected, np.ndarray) and isinstance(actual, np.ndarray)
            findings.append(Finding(
                code="numerical_parity.shape_mismatch" if tensor else "numerical_parity.structure_mismatch",
                severity=Severity.ERROR, step="compare",
                message=f"{problems[0]}{at}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                observed=str(type_of(actual)), expected=str(type_of(expected)),
                remediation="see the io_contract report; a changed key set or length changes what clients read"))
        exceeded: list[str] = []
        for path, a, e in pairs:
            if a.dtype.kind in "USO" or e.dtype.kind in "USO":
                differ = int(np.count_nonzero(a.astype(str) != e.astype(str)))
                if differ:
                    exceeded.append(path)
                    findings.append(Finding(
                        code="numerical_parity.value_mismatch", severity=Severity.ERROR, step="compare",
                        message=f"{path} differs from the reference in {differ} of {a.size} strings{at}",
                        observed=f"differing={differ}", expected="equal strings",
                        remediation="a string output must match exactly: check the runtime's text ops"))
                continue
            precision = effective_precision(ctx.cell.backend.precision, str(a.dtype))
            tol, source = tolerance_for(manifest, name, precision)
            atol = tol.atol if params.atol is None else params.atol
            rtol = tol.rtol if params.rtol is None else params.rtol
            if params.atol is not None or params.rtol is not None:
                source = "params"
            stats = compare(a, e)
            for key, value in stats.items():
                worst[key] = max(worst[key], value)
            a64, e64 = np.asarray(a, np.float64), np.asarray(e, np.float64)
            new_non_finite = int(np.count_nonzero(~np.isfinite(a64) & np.isfinite(e64)))
            worst["non_finite_values"] += new_non_finite
            needed = min_passing_atol(a, e, rtol)
            if needed is None:
                state["unreachable"] = True
            else:
                worst["min_passing_atol"] = max(worst["min_passing_atol"], needed)
            used = tolerance_used(a, e, atol, rtol)
            worst["tolerance_used"] = max(worst["tolerance_used"], used if np.isfinite(used) else 1e300)
            where = f"(atol {atol:g}, rtol {rtol:g} from {source}, {precision})"
            if new_non_finite:
                findings.append(Finding(
                    code="numerical_parity.non_finite", severity=Severity.ERROR, step="compare",
                    message=f"{path} has {new_non_finite} NaN/Inf values where the reference is finite {where}{at}",
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
                exceeded.append(path)
                findings.append(Finding(
                    code="numerical_parity.tolerance_exceeded", severity=Severity.ERROR, step="compare",
                    message=f"{path} differs from the reference: max abs {stats['max_abs_diff']:.3g}, "
                            f"max rel {stats['max_rel_diff']:.3g} {where}{at}; {passing}",
                    observed=f"max_abs_diff={stats['max_abs_diff']:.6g}", expected=f"atol={atol:g}, rtol={rtol:g}",
                    remediation="find the op that diverges (e.g. polygraphy run --onnxrt --validate, or compare "
                                "layer outputs); if the drift is acceptable for this backend, set a per-output "
                                "tolerance in the manifest (tolerances.per_output)"))
            elif used > WARN_FRACTION:
                findings.append(Finding(
                    code="numerical_parity.near_tolerance", severity=Severity.WARN, step="compare",
                    message=f"{path} passes but uses {used:.0%} of its tolerance {where}{at}; {passing}",
                    observed=f"tolerance_used={used:.3g}", expected=f"≤ {WARN_FRACTION:g}",
                    remediation="a small runtime or backend change may push it over: check which op drifts, "
                                "or widen the per-output tolerance deliberately"))
        semantics = spec.semantics if spec is not None else None
        if semantics in PREDICTION_SEMANTICS and not problems:
            lowered = any(effective_precision(ctx.cell.backend.precision, str(getattr(a, "dtype", ""))) != "fp32"
                          for _, a, _ in pairs) or _quantized_graph(ctx)
            findings = self._grade_predictions(params, name, semantics, actual, expected, at,
                                               exceeded if lowered else [], findings, worst, exceeded)
        return findings

    def _grade_predictions(self, params: NumericalParityParams, name: str, semantics: str, actual: Any,
                           expected: Any, at: str, exceeded: list[str], findings: list[Finding],
                           worst: dict[str, float], missed: list[str] | None = None) -> list[Finding]:
        """Prediction-level grade of one output: drift that lower precision explains and whose predictions agree
        becomes a warning (`exceeded`: the paths it may grade down); changed predictions are reported wherever
        the tensors missed (`missed`)."""
        figures = prediction_metrics(semantics, actual, expected, params.top_k)
        if figures is None:
            return findings
        for key, value in figures.items():
            worst[key] = min(worst.get(key, value), value)
        missed = exceeded if missed is None else missed
        if not missed:
            return findings
        if semantics == "embedding":
            agree = figures["min_cosine"] >= params.min_cosine
            said = f"min cosine {figures['min_cosine']:.4f} (mean {figures['mean_cosine']:.4f})"
            bar = f"min cosine ≥ {params.min_cosine:g}"
        else:
            agree = figures["top1_agreement"] >= params.min_top1_agreement
            said = f"top-1 agreement {figures['top1_agreement']:.1%}" + (
                f", top-{params.top_k} agreement {figures['topk_agreement']:.1%}" if "topk_agreement" in figures
                else "")
            bar = f"top-1 agreement ≥ {params.min_top1_agreement:.0%}"
        if not agree:
            return findings + [Finding(
                code="numerical_parity.predictions_changed", severity=Severity.ERROR, step="predictions",
                message=f"output {name!r} ({semantics}) changes predictions{at}: {said}",
                observed=said, expected=bar,
                remediation="the drift changes what the model predicts: keep the diverging ops at higher precision, "
                            "recalibrate the quantization, or do not serve this backend")]
        if not exceeded:  # fp32: nothing explains the miss, the tolerance finding stands
            return findings
        # Predictions agree: the drift beyond tolerance is graded down to a warning, with the figures.
        kept = [f for f in findings if not (f.code == "numerical_parity.tolerance_exceeded"
                                            and any(f.message.startswith(p) for p in exceeded))]
        return kept + [Finding(
            code="numerical_parity.predictions_agree", severity=Severity.WARN, step="predictions",
            message=f"output {name!r} ({semantics}) drifts beyond tolerance but its predictions agree{at}: {said}",
            observed=said, expected=bar,
            remediation="acceptable for serving if the application reads predictions only; set a per-output "
                        "tolerance in the manifest to record the accepted drift")]


def _quantized_graph(ctx: ValidationContext) -> bool:
    """Whether the cell runs a quantized ONNX graph (read statically: no weights loaded)."""
    path = ctx.artifact_path
    if path is None or not str(path).endswith(".onnx"):
        return False
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # noqa: BLE001 - an unreadable model is loadability's finding, not this grade's
        return False
    return any(node.op_type in QUANTIZED_OPS for node in graph.node)
