"""`io_contract`: the runtime sees the manifest's inputs/outputs, and a run on the payload honours them."""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from modelcompat.validators import Finding, Outcome, Params, Severity, TensorSpec, ValidationContext, Validator

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
        metrics = {}
        if params.check_run and not any(f.code.startswith("io_contract.input") for f in findings):
            payload_path = ctx.package.resolve(ctx.package.manifest.payload)
            with np.load(payload_path, allow_pickle=False) as payload:
                missing = [t.name for t in contract.inputs if t.name not in payload.files]
                if missing:
                    findings.append(_finding(
                        "payload_mismatch", f"the payload has no tensor for input(s) {', '.join(missing)}",
                        sorted(payload.files), [t.name for t in contract.inputs],
                        "the payload and the contract disagree: re-create the package with a payload keyed by "
                        "the contract's input names", "run"))
                    return Outcome(metrics=metrics, findings=findings, runtime_version=loaded.get("runtime_version"))
                bindings: dict[str, int] = {}
                for spec in contract.inputs:
                    if spec.name in payload.files:
                        for need, have in zip(spec.shape, payload[spec.name].shape):
                            if isinstance(need, str):
                                bindings.setdefault(need, int(have))
            outputs = ctx.run_payload()
            seen = [{"name": n, "dtype": str(a.dtype), "shape": list(a.shape)} for n, a in outputs.items()]
            findings += compare_tensors("output", contract.outputs, seen, "run", bindings)
            metrics["outputs_checked"] = float(len(seen))
        return Outcome(metrics=metrics, findings=findings, runtime_version=loaded.get("runtime_version"))
