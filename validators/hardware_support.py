"""`hardware_support`: the cell's execution provider exists in its runtime, and the model runs at the cell's precision.

For onnxruntime the model is converted on the host (`modelcompat.model.precision`: fp16 with onnxruntime's own
converter, bf16 from that, int8 by dynamic quantization) and the conversion is loaded and run in the cell's
runtime, as every probe-using validator of the cell does (`ValidationContext.load()`); for torch the probe
casts the module (fp16/bf16). The runtime's own error is the evidence.
"""
from __future__ import annotations

from pydantic import Field

from modelcompat.validators import (
    ConversionError,
    Finding,
    Outcome,
    Params,
    ProbeRequestError,
    Severity,
    ValidationContext,
    Validator,
)

_TORCH_DEVICE = {"cpu": "cpu", "cuda": "cuda", "rocm": "cuda"}  # torch's ROCm build answers to "cuda"


class HardwareSupportParams(Params):
    run: bool = Field(True, description="Also run the payload at the cell's precision (not only load it).")


def _finding(code: str, severity: Severity, message: str, step: str, observed: str | None, expected: str,
             remediation: str) -> Finding:
    return Finding(code=f"hardware_support.{code}", severity=severity, message=message[:2000], step=step,
                   observed=observed[:2000] if observed else observed, expected=expected, remediation=remediation)


class HardwareSupport(Validator):
    name = "hardware_support"
    version = "1"
    description = ("The cell's execution provider is available in its runtime and actually used, and the model "
                   "loads and runs at the cell's precision (fp32/fp16/bf16/int8) on its hardware.")
    Params = HardwareSupportParams
    inputs = ("artifact", "payload", "runtime", "hardware", "backend")
    reloads_model = True  # see Validator.reloads_model

    def validate(self, ctx: ValidationContext, params: HardwareSupportParams) -> Outcome:
        cell = ctx.cell
        precision = cell.backend.precision
        info = ctx.request("describe", kind=cell.runtime.kind)
        available = list(info.get("providers") or [])
        runtime = info.get("runtime_version") or cell.runtime.id
        if cell.runtime.kind == "onnxruntime":
            wanted = cell.backend.provider or "CPUExecutionProvider"
        else:
            wanted = _TORCH_DEVICE.get(cell.hardware.kind, cell.hardware.kind)
        metrics = {"provider_available": 0.0, "precision_supported": 0.0}
        if wanted not in available:
            fix = (f"install the build of onnxruntime that ships {wanted} (e.g. onnxruntime-gpu for CUDA/TensorRT) "
                   "in this runtime's requirements, or drop the cell" if cell.runtime.kind == "onnxruntime" else
                   f"install a torch build with {wanted} support and run on a machine that has the device")
            return Outcome(metrics=metrics, runtime_version=runtime, findings=[_finding(
                "provider_unavailable", Severity.ERROR,
                f"{runtime} on {cell.hardware.id} offers {', '.join(available) or 'no provider'}, not {wanted}",
                "describe", ", ".join(available), wanted, fix)])
        metrics["provider_available"] = 1.0

        try:
            ctx.model_path()  # the conversion for onnxruntime at fp16/bf16/int8, cached for the cell's validators
        except ConversionError as exc:
            return Outcome(metrics=metrics, runtime_version=runtime, findings=[_finding(
                "conversion_failed", Severity.ERROR,
                f"the model could not be converted to {precision}: {exc.cause}", "convert", exc.cause, precision,
                "convert the model yourself (onnxconverter-common / onnxruntime.quantization) with the "
                "offending ops blocked, ship the converted artifact, or drop the cell")])

        unsupported_fix = (f"{runtime} has no {precision} kernels for this model on {cell.hardware.id}: run "
                           f"it at fp32 here, keep the unsupported ops in fp32 (mixed precision), or target "
                           f"hardware that supports {precision} (e.g. CUDA for fp16)")
        try:
            loaded = ctx.load_variant()  # a fresh load: its refusal is this check's evidence
        except ProbeRequestError as exc:
            return Outcome(metrics=metrics, runtime_version=runtime, findings=[_finding(
                "precision_unsupported", Severity.ERROR,
                f"{runtime} refused to load the model at {precision} on {cell.hardware.id} ({wanted}): "
                f"{exc.error_type}: {exc.message}", "load", f"{exc.error_type}: {exc.message}", precision,
                unsupported_fix)])
        used = list(loaded.get("providers") or [])
        findings: list[Finding] = []
        if cell.runtime.kind == "onnxruntime" and used and used[0] != wanted:
            metrics["provider_available"] = 0.0
            findings.append(_finding(
                "provider_unavailable", Severity.ERROR,
                f"{runtime} accepted {wanted} but the session runs on {', '.join(used)} (silent fallback)", "load",
                ", ".join(used), wanted,
                f"check the {wanted} installation (drivers, CUDA/cuDNN/TensorRT libraries) against what this "
                "onnxruntime build needs"))
        # A converted onnxruntime model carries no note (`load_variant` drops it): only torch int8 does.
        if loaded.get("precision_note"):
            findings.append(_finding(
                "precision_not_applied", Severity.WARN,
                f"{precision} is not applied by the {cell.backend.id} backend: {loaded['precision_note']}", "load",
                str(loaded.get("precision")), precision,
                f"export an already-{precision} model (e.g. torch.ao.quantization) or use an onnxruntime backend, "
                "where modelcompat converts the model"))
        if params.run:
            try:
                outputs = ctx.run_loaded(f"hardware-{precision}")
            except ProbeRequestError as exc:
                findings.append(_finding(
                    "precision_unsupported", Severity.ERROR,
                    f"{runtime} loaded the model at {precision} but failed to run it on {cell.hardware.id}: "
                    f"{exc.error_type}: {exc.message}", "run", f"{exc.error_type}: {exc.message}", precision,
                    unsupported_fix))
                return Outcome(metrics=metrics, findings=findings, runtime_version=runtime)
            metrics["outputs_checked"] = float(len(outputs))
        metrics["precision_supported"] = 1.0
        return Outcome(metrics=metrics, findings=findings, runtime_version=runtime)
