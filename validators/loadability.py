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

# The runtime's own error text is the most precise diagnosis there is: classify it, keep it verbatim.
# OpenVINO's frontend errors come first: their text can hold words the onnxruntime patterns below look for.
_CLASSIFIERS: list[tuple[str, str, str]] = [
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


def classify_load_error(text: str) -> tuple[str, str]:
    """(finding code suffix, remediation) for a runtime's load error message."""
    for pattern, code, remediation in _CLASSIFIERS:
        if re.search(pattern, text):
            return code, remediation
    return "load_failed", "read the runtime's message; check the model's format and the runtime version"


class Loadability(Validator):
    name = "loadability"
    version = "1"
    description = "The artifact loads in the cell's runtime and backend (execution provider / torch mode)."
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
        return Outcome(metrics={"load_time_ms": float(loaded["load_time_ms"])}, findings=findings,
                       runtime_version=loaded.get("runtime_version"))

    @staticmethod
    def _precise_remediation(ctx: ValidationContext, code: str, text: str) -> str | None:
        """For an ONNX model refused by onnxruntime: the release that supports it (the table), or the op's fix;
        for OpenVINO's frontend: the operations it could not convert, by name."""
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
