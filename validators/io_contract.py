"""`io_contract`: the runtime sees the manifest's inputs/outputs, and a run on each payload honours them.

Tensors, sequences, maps and optionals are compared in the contract grammar (docs/contract.md). With
several payloads (`payloads:`), a model that declares an axis dynamic but breaks at another size fails
with `io_contract.dynamic_axis_broken`, naming the axis and the size.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from modelcompat.model.types import TensorType, TypeSyntaxError, mismatch, parse_type, type_of
from modelcompat.validators import Finding, Outcome, Params, Severity, TensorSpec, ValidationContext, Validator
from modelcompat.validators.payload_runs import PayloadRun, changed_dims, run_payloads

UNKNOWN = {"unknown", "", None}


class IoContractParams(Params):
    check_declared: bool = Field(True, description="Compare the I/O the runtime declares at load time.")
    check_run: bool = Field(True, description="Run the payload and compare the produced outputs.")


def _finding(code: str, message: str, observed: Any, expected: Any, remediation: str, step: str) -> Finding:
    return Finding(code=f"io_contract.{code}", severity=Severity.ERROR, message=message, step=step,
                   observed=str(observed), expected=str(expected), remediation=remediation)


def compare_tensors(kind: str, declared: list[TensorSpec], seen: list[dict[str, Any]], step: str,
                    bindings: dict[str, int] | None = None) -> list[Finding]:
    """Names, dtypes and shapes of `seen` tensors against the contract; symbolic dims bind consistently."""
    findings: list[Finding] = []
    seen_by_name = {t["name"]: t for t in seen}
    want = [t.name for t in declared]
    missing = [n for n in want if n not in seen_by_name]
    extra = [n for n in seen_by_name if n not in want]
    if missing:
        findings.append(_finding(
            f"{kind}_missing", f"{kind} {', '.join(missing)} declared in the manifest but not seen by the runtime",
            sorted(seen_by_name), want,
            "a renamed or removed tensor breaks every client: restore the name at export "
            "(input_names/output_names) or publish a new contract version", step))
    if extra and kind == "input":
        findings.append(_finding(
            "input_unexpected", f"the model takes inputs the manifest does not declare: {', '.join(extra)}",
            sorted(seen_by_name), want, "declare them in the manifest contract or remove them from the model", step))
    bindings = {} if bindings is None else bindings
    for spec in declared:
        got = seen_by_name.get(spec.name)
        if got is None:
            continue
        dtype = got.get("dtype")
        if not spec.is_tensor or _non_tensor(dtype):
            finding = _compare_types(kind, spec, dtype, step)
            if finding is not None:
                findings.append(finding)
            continue
        if dtype not in UNKNOWN and dtype != spec.dtype:
            findings.append(_finding(
                f"{kind}_dtype", f"{kind} {spec.name!r} is {dtype}, the contract says {spec.dtype}",
                dtype, spec.dtype, "cast at export time to the contracted dtype, or version the contract", step))
        shape = got.get("shape")
        if not shape and shape != []:
            continue
        if shape == [] and spec.shape and dtype in UNKNOWN:
            continue  # the runtime does not declare shapes statically (torch): the run step checks them
        if len(shape) != len(spec.shape):
            findings.append(_finding(
                f"{kind}_rank", f"{kind} {spec.name!r} has rank {len(shape)}, the contract says {len(spec.shape)}",
                shape, spec.shape, "restore the contracted shape at export", step))
            continue
        for axis, (have, need) in enumerate(zip(shape, spec.shape)):
            if isinstance(need, int) and isinstance(have, int) and have != need:
                findings.append(_finding(
                    f"{kind}_shape", f"{kind} {spec.name!r} axis {axis} is {have}, the contract says {need}",
                    shape, spec.shape, "restore the contracted shape at export", step))
            elif isinstance(need, int) and isinstance(have, str):
                continue  # a dynamic dim accepts the fixed size the contract promises
            elif need == "?":
                continue  # unknown in the contract (e.g. a converter's wrong static size): nothing to hold
            elif isinstance(need, str) and isinstance(have, int):
                if step == "run":  # at run time a symbolic dim binds to one size across all tensors
                    bound = bindings.setdefault(need, have)
                    if bound != have:
                        findings.append(_finding(
                            f"{kind}_shape", f"{kind} {spec.name!r} axis {axis} ({need}) is {have}, but {need} "
                            f"is {bound} elsewhere", shape, spec.shape, "keep symbolic dims consistent", step))
                else:
                    findings.append(_finding(
                        f"{kind}_dynamic_dim_fixed",
                        f"{kind} {spec.name!r} axis {axis} is fixed to {have}, the contract says it is dynamic ({need})",
                        shape, spec.shape, "export with dynamic axes (dynamic_axes / torch.export.Dim)", step))
    return findings


def _non_tensor(dtype: Any) -> bool:
    return isinstance(dtype, str) and dtype.startswith(("seq(", "map(", "optional("))


def _compare_types(kind: str, spec: TensorSpec, observed: Any, step: str) -> Finding | None:
    """A declared non-tensor (or a tensor the runtime sees as non-tensor) against the runtime's type."""
    if observed in UNKNOWN or observed in ("seq", "map", "optional"):
        return None  # the runtime does not say (torch): the run step checks the values
    want = spec.value_type
    try:
        have = parse_type(observed)
    except TypeSyntaxError:
        have = None
    if have is not None and _same_type(have, want):
        return None
    return _finding(f"{kind}_type", f"{kind} {spec.name!r} is {observed}, the contract says {want}", observed,
                    want, "a changed output type breaks every client decoding it: restore the type at export "
                    "(e.g. skl2onnx options={'zipmap': ...}) or publish a new contract version", step)


def _same_type(have: Any, want: Any) -> bool:
    """Structural equality; a shapeless tensor on either side matches any shape of the same dtype."""
    if isinstance(have, TensorType) and isinstance(want, TensorType):
        return have.dtype == want.dtype and (have.shape is None or want.shape is None or
                                             len(have.shape) == len(want.shape))
    if type(have) is not type(want):
        return False
    if hasattr(want, "key") and have.key != want.key:
        return False
    return _same_type(getattr(have, "elem", getattr(have, "value", None)),
                      getattr(want, "elem", getattr(want, "value", None)))


def check_values(kind: str, declared: list[TensorSpec], values: dict[str, Any], step: str,
                 bindings: dict[str, int]) -> list[Finding]:
    """Values of a run (or a payload) against the contract: tensors by dtype and shape, others by structure."""
    tensors = [{"name": n, "dtype": type_of(v).dtype, "shape": list(v.shape)} for n, v in values.items()
               if hasattr(v, "shape") and not isinstance(v, (dict, list))]
    findings = compare_tensors(kind, [s for s in declared if s.is_tensor],
                               tensors + [{"name": s.name} for s in declared if not s.is_tensor], step, bindings)
    for spec in declared:
        if spec.is_tensor or spec.name not in values:
            continue
        why = mismatch(values[spec.name], spec.value_type, f"{kind} {spec.name!r}", bindings)
        if why:
            findings.append(_finding(f"{kind}_type", why, type_of(values[spec.name]), spec.value_type,
                                     "restore the contracted type at export, or version the contract", step))
    return findings


class IoContract(Validator):
    name = "io_contract"
    version = "1"
    description = "Inputs/outputs the runtime sees match the manifest; a run on the payload gives the declared names, dtypes and shapes."
    Params = IoContractParams
    inputs = ("artifact", "manifest.contract", "payload", "runtime", "backend")

    def validate(self, ctx: ValidationContext, params: IoContractParams) -> Outcome:
        contract = ctx.package.manifest.contract
        loaded = ctx.load()
        findings: list[Finding] = []
        if params.check_declared:
            findings += compare_tensors("input", contract.inputs, loaded.get("inputs") or [], "load")
            findings += compare_tensors("output", contract.outputs, loaded.get("outputs") or [], "load")
        metrics: dict[str, float] = {}
        if params.check_run and not any(f.code.startswith("io_contract.input") for f in findings):
            runs = _payload_runs(ctx, contract.inputs, findings)
            if runs:
                first = runs[0]
                for run in runs:
                    found = _check_run(run, first, contract.outputs)
                    findings += found
                    metrics[f"outputs_checked{run.suffix}"] = float(len(run.outputs or {}))
                metrics["payloads_checked"] = float(len(runs))
        return Outcome(metrics=metrics, findings=findings, runtime_version=loaded.get("runtime_version"))


def _payload_runs(ctx: ValidationContext, inputs: list[TensorSpec], findings: list[Finding]) -> list[PayloadRun]:
    """Runs of every payload, or none when a payload does not fit the contract's inputs (that is the finding)."""
    from modelcompat.model.values import load_values

    for i, entry in enumerate(ctx.package.manifest.all_payloads()):
        label = "payload" if i == 0 else f"payloads[{i - 1}]"
        values = load_values(ctx.package.resolve(entry.payload))
        missing = [t.name for t in inputs if t.name not in values]
        if missing:
            findings.append(_finding(
                "payload_mismatch", f"the {label} ({entry.payload}) has no value for input(s) {', '.join(missing)}",
                sorted(values), [t.name for t in inputs],
                "the payload and the contract disagree: re-create the package with a payload keyed by "
                "the contract's input names", "run"))
            return []
        bad = check_values("input", inputs, values, "run", {})
        if bad:
            findings.extend(f.model_copy(update={"code": "io_contract.payload_mismatch",
                                                 "message": f"the {label} ({entry.payload}): {f.message}"})
                            for f in bad)
            return []
    return run_payloads(ctx)


def _check_run(run: PayloadRun, first: PayloadRun, outputs: list[TensorSpec]) -> list[Finding]:
    where = "" if run is first else f" at {run.label} ({run.entry.payload}; {changed_dims(first, run)})"
    if run.refused is not None:
        return [_finding(
            "dynamic_axis_broken",
            f"the model runs the first payload but the runtime refuses {run.label} ({run.entry.payload}) with "
            f"{changed_dims(first, run)}: {run.refused.error_type}: {run.refused.message[:500]}",
            f"{run.refused.error_type} at {changed_dims(first, run)}", "a run at every size the contract allows",
            "the export baked a size into the graph (e.g. x.view(8, -1) or a constant Reshape shape): use "
            "x.view(x.shape[0], -1) / flatten, or declare the axis fixed in the contract", f"run {run.label}")]
    found = check_values("output", outputs, run.outputs or {}, "run", dict(run.bindings))
    if run is not first and found:
        broken = [f for f in found if f.code in ("io_contract.output_shape", "io_contract.output_type")]
        found = [f.model_copy(update={"message": f.message + where, "step": f"run {run.label}"}) for f in found]
        if broken:
            found.append(_finding(
                "dynamic_axis_broken", f"the contract declares {changed_dims(first, run)} possible, but the "
                f"outputs at {run.label} do not follow it: {broken[0].message}", broken[0].observed,
                broken[0].expected, "the export baked a size into the graph (e.g. x.view(8, -1) or a constant "
                "Reshape shape): use x.view(x.shape[0], -1) / flatten, or declare the axis fixed",
                f"run {run.label}"))
    return found
