"""`loadability`: the artifact loads in the cell's runtime and backend; the load time is reported.

A refusal for IR/opset is remediated with the same text as opset_support (validators/capabilities.py: the oldest
onnxruntime release that supports the model, from the shipped table and what this machine learned).
"""
from __future__ import annotations

import re

from modelcompat.validators import (
    Finding,
    Outcome,
    Params,
    ProbeRequestError,
    Severity,
    ValidationContext,
    Validator,
)
from modelcompat.model.provenance import read_facts
from modelcompat.validators import torch_formats
from modelcompat.validators.capabilities import (
    UNREGISTERED_OP,
    custom_domain_fix,
    model_needs,
    registered_anywhere,
    upgrade_remediation,
)

# OpenVINO names every operation its frontend could not convert on one line.
_UNCONVERTED = re.compile(r"No conversion rule found for operations: ([^\n]+)")
# skl2onnx's fix for the ZipMap output OpenVINO (and other tensor-only runtimes) refuses.
ZIPMAP_FIX = ("re-export without the ZipMap: skl2onnx.to_onnx(model, X, options={id(model): {\"zipmap\": False}}) "
              "gives the probabilities as a float tensor")

# ExecuTorch logs each operator it has no kernel for; the probe adds them to the error ("missing operators: a, b").
_ET_MISSING = re.compile(r"missing operators: ([^;\n]+)")

# The runtime's own error text is the most precise diagnosis there is: classify it, keep it verbatim.
# torch's file-format refusals come first (their text names the archive reader, as a damaged file's does), then
# ExecuTorch's and OpenVINO's errors: their text can hold words the onnxruntime patterns below look for.
_CLASSIFIERS: list[tuple[str, str, str]] = [
    *torch_formats.CLASSIFIERS,
    # ExecuTorch (the probe names the runtime's error code): a kernel the runtime was not built with.
    (r"OperatorMissing|Missing operator", "missing_operator",
     "the ExecuTorch runtime has no kernel for an operator of this program: build the runtime with a kernel library "
     "that registers it (a custom op's out variant, or a selective build including it), lower it into a delegate "
     "(XNNPACK), or replace the op at export"),
    (r"DelegateInvalidCompatibility|DelegateInvalidHandle|DelegateMemoryAllocationFailed", "delegate_incompatible",
     "the program was lowered for a delegate this runtime cannot run (another backend, or another executorch "
     "release's format): lower the model again with this runtime's executorch, or register that backend"),
    (r"ExecuTorch load_program failed|InvalidProgram", "invalid_program",
     "the file is not a program this ExecuTorch runtime can read (corrupt, or written by another executorch "
     "release): export and lower it again with the runtime's executorch version"),
    # Lowering a .pt2 in the cell: ops outside the Edge dialect (no core ATen decomposition).
    (r"is not an Aten Canonical|SpecViolationError|not in Core ATen", "lowering_failed",
     "torch.export produced ops ExecuTorch cannot lower: export with core ATen decompositions "
     "(ExportedProgram.run_decompositions()), or replace the ops the message names"),
    # OpenVINO's ONNX frontend takes tensors only: "Unsupported value_info type: output_probability".
    (r"Unsupported value_info type", "unsupported_value_type",
     "the runtime takes tensor inputs/outputs only, and this model has a sequence or map (e.g. skl2onnx's "
     "ZipMap probabilities): " + ZIPMAP_FIX + ", or serve this model with onnxruntime"),
    # OpenVINO: "OpConversionFailure: … No conversion rule found for operations: custom.dom.Foo" (all listed).
    (r"No conversion rule found for operations|OpConversionFailure", "unsupported_op",
     "OpenVINO's frontend cannot convert the operations listed: replace them at export, add an OpenVINO "
     "frontend extension for them (Core.add_extension), or serve this model with onnxruntime"),
    # OpenVINO at compile time: the device plugin has no implementation for an op or type.
    (r"Cannot create .* layer|is not supported by (the )?(CPU|GPU|NPU)|Unsupported operation",
     "device_unsupported",
     "the device cannot run every operation of this model: see the operator_coverage report for the ops; "
     "run it on another device (CPU) or change those ops at export"),
    (r"Unsupported model IR version|IR version", "ir_version_unsupported",
     ("re-export with an IR version this runtime supports (e.g. an older onnx package / opset), "
      "or upgrade the runtime")),
    (r"opset|Opset", "opset_unsupported",
     "re-export with a lower opset (torch.onnx.export(..., opset_version=N)), or upgrade the runtime"),
    (r"is not a registered function/op", "unregistered_op",
     ("no kernel or function is registered for this op's domain and type: register the custom op library that "
      "implements it (SessionOptions.register_custom_ops_library), use a runtime version that has the op, or "
      "replace the op at export")),
    (r"NOT_IMPLEMENTED|Could not find an implementation", "missing_kernel",
     ("the runtime has no kernel for an operator/type in this model: change the op or dtype, or use another "
      "execution provider or runtime version")),
    (r"INVALID_PROTOBUF|INVALID_GRAPH|ModelProto|Protobuf parsing failed|PytorchStreamReader|not a zip",
     "invalid_model", "the file is not a valid model of its declared format: re-export it"),
    (r"MemoryError|bad_alloc|out of memory", "out_of_memory", "give the runtime more memory or shrink the model"),
]


def lowering_metrics(lowering: dict) -> dict[str, float]:
    """An ExecuTorch lowering's record as metrics: its time, partitions, delegated and portable op counts."""
    return {name: float(lowering[name]) for name in ("lowering_time_ms", "delegate_partitions", "delegated_ops",
                                                     "portable_ops", "program_bytes") if lowering.get(name) is not None}


def lowering_finding(ctx: ValidationContext, lowering: dict) -> Finding:
    """What the cell lowered, with what, into what: the evidence of a lowering, as an info finding."""
    portable = lowering.get("portable_op_names") or []
    delegates = ", ".join(lowering.get("delegates") or []) or "no delegate"
    reused = " (reused: lowered earlier with the same .pt2, executorch and backend)" if lowering.get("cached") else ""
    return Finding(
        code="loadability.lowered", severity=Severity.INFO, step="lower",
        message=(f"{ctx.artifact.path} lowered with executorch {lowering.get('executorch_version')} for "
                 f"{lowering.get('backend')} in {float(lowering.get('lowering_time_ms') or 0) / 1000:.1f} s{reused}: "
                 f"{lowering.get('delegated_ops')} ops in {lowering.get('delegate_partitions')} partition(s) of "
                 f"{delegates}, {lowering.get('portable_ops')} on portable kernels"
                 + (f" ({', '.join(portable[:12])}{', …' if len(portable) > 12 else ''})" if portable else "")),
        observed=f"delegated_ops={lowering.get('delegated_ops')}; portable_ops={lowering.get('portable_ops')}")


def classify_load_error(text: str) -> tuple[str, str]:
    """(finding code suffix, remediation) for a runtime's load error message."""
    for pattern, code, remediation in _CLASSIFIERS:
        if re.search(pattern, text):
            return code, remediation
    return "load_failed", "read the runtime's message; check the model's format and the runtime version"


class Loadability(Validator):
    name = "loadability"
    version = "1"
    description = ("The artifact loads in the cell's runtime and backend (execution provider / torch mode); an "
                   "ExecuTorch cell lowering a .pt2 reports the lowering.")
    inputs = ("artifact", "runtime", "hardware", "backend")
    needs_model = False  # it is the load: its failure is the root cause the others are blocked by

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        try:
            loaded = ctx.load()
        except ProbeRequestError as exc:
            text = f"{exc.error_type}: {exc.message}"
            code, remediation = classify_load_error(text)
            remediation = self._precise_remediation(ctx, code, text) or remediation
            return Outcome(findings=[Finding(
                code=f"loadability.{code}", severity=Severity.ERROR, step="load",
                message=f"{ctx.cell.runtime.id} cannot load {ctx.artifact.path}: {exc.error_type}: {exc.message}"[:2000],
                remediation=remediation,
            )])
        findings = []
        requested = ctx.cell.backend.provider
        used = loaded.get("providers") or []
        if requested and requested not in used:
            findings.append(Finding(
                code="loadability.provider_unavailable", severity=Severity.ERROR, step="load",
                message=f"{requested} was requested but the session runs on {', '.join(used) or 'nothing'}",
                observed=", ".join(used), expected=requested,
                remediation=f"install a runtime build that ships {requested} (e.g. onnxruntime-gpu for CUDA) "
                            "on a worker with that hardware",
            ))
        metrics = {"load_time_ms": float(loaded["load_time_ms"])}
        lowering = loaded.get("lowering")
        if lowering:  # ExecuTorch lowered the .pt2 in this cell: part of what was checked
            metrics.update(lowering_metrics(lowering))
            findings.append(lowering_finding(ctx, lowering))
        return Outcome(metrics=metrics, findings=findings, runtime_version=loaded.get("runtime_version"))

    @staticmethod
    def _precise_remediation(ctx: ValidationContext, code: str, text: str) -> str | None:
        """The fix for this model in this cell, where the error and the model say more than the generic text: a
        torch file's saving release against the cell's torch; the ExecuTorch kernels or OpenVINO operations
        missing, by name; for an ONNX model refused by onnxruntime, the release that supports it (the table) or
        the op's fix."""
        if code in (torch_formats.PT2_CODE, torch_formats.TORCHSCRIPT_CODE):
            # Who saved the file (it says), and which torch the cell runs (the probe says).
            facts = read_facts(ctx.artifact_path, ctx.artifact.format, ctx.artifact.path)
            try:
                reader = ctx.request("describe", kind="torch").get("version")
            except Exception:  # noqa: BLE001 - a dead probe: the remediation names the runtime without a version
                reader = None
            return torch_formats.remediation(code, text, facts, reader, ctx.cell.runtime.id)
        if code == "missing_operator" and (match := _ET_MISSING.search(text)):
            return (f"{ctx.cell.runtime.id}'s ExecuTorch runtime has no kernel for {match.group(1).strip()}: build the "
                    "runtime with a kernel library registering it (EXECUTORCH_LIBRARY for a custom op's out variant, "
                    "or a selective build including it), lower it into a delegate, or replace it at export")
        if code == "unsupported_op" and (match := _UNCONVERTED.search(text)):
            ops = ", ".join(op.strip() for op in match.group(1).split(",") if op.strip())
            return (f"{ctx.cell.runtime.id}'s frontend has no conversion for {ops}: replace them at export, add an "
                    "OpenVINO frontend extension implementing them (Core.add_extension), or serve this model with "
                    "onnxruntime")
        if ctx.cell.backend.runtime != "onnxruntime" or ctx.cell.backend.consumes() != "onnx":
            return None
        if code == "unregistered_op" and (match := UNREGISTERED_OP.search(text)):
            domain = match["domain"] or "ai.onnx"
            if registered_anywhere(domain, ctx.capabilities_dir) is None:
                return custom_domain_fix(domain)
            return (f"{ctx.cell.runtime.id} has no {domain}:{match['op']}: use a runtime version that implements it "
                    "(see the operator_coverage report), or replace the op at export")
        if code not in ("ir_version_unsupported", "opset_unsupported"):
            return None
        try:
            import onnx

            model = onnx.load(str(ctx.artifact_path), load_external_data=False)  # the graph only
            current = str(ctx.request("describe", kind="onnxruntime").get("version"))
        except Exception:  # noqa: BLE001 - unreadable model or dead probe: the generic text is still right
            return None
        what = "an IR version" if code == "ir_version_unsupported" else "opsets"
        return (f"re-export with {what} this runtime supports (see the opset_support report for its maxima), "
                f"or use {upgrade_remediation(model_needs(model), current, ctx.capabilities_dir)}")
