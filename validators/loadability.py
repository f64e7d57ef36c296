"""`loadability`: the artifact loads in the cell's runtime and backend; the load time is reported."""
from __future__ import annotations

import re

from modelcompat.validators import Finding, Outcome, Params, ProbeRequestError, Severity, ValidationContext, Validator

# The runtime's own error text is the most precise diagnosis there is: classify it, keep it verbatim.
_CLASSIFIERS: list[tuple[str, str, str]] = [
    (r"Unsupported model IR version|IR version", "ir_version_unsupported",
     "re-export with an IR version this runtime supports (e.g. an older onnx package / opset), "
     "or upgrade the runtime"),
    (r"opset|Opset", "opset_unsupported",
     "re-export with a lower opset (torch.onnx.export(..., opset_version=N)), or upgrade the runtime"),
    (r"NOT_IMPLEMENTED|Could not find an implementation", "missing_kernel",
     "the runtime has no kernel for an operator/type in this model: change the op or dtype, or use another "
     "execution provider or runtime version"),
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
            code, remediation = classify_load_error(f"{exc.error_type}: {exc.message}")
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
