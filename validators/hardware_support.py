"""`hardware_support`: the cell's execution provider (or device) exists in its runtime and really runs the model, and
the model runs at the cell's precision.

For onnxruntime the model is converted on the host (`modelcompat.model.precision`: fp16 with onnxruntime's own
converter, bf16 from that, int8 by dynamic quantization) and the conversion is loaded and run in the cell's
runtime, as every probe-using validator of the cell does (`ValidationContext.load()`); for torch the probe
casts the module (fp16/bf16); OpenVINO compiles it with an inference precision hint (f32/f16/bf16) and says
which precision the device applied. The runtime's own error is the evidence. An onnxruntime provider other
than CPU is checked for silent CPU fallback: a profiled run names the provider of every kernel.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from modelcompat.matrix.families import family
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
        else:  # the device the cell's hardware maps to in its family (torch: cuda for ROCm; OpenVINO: GPU)
            wanted = family(cell.runtime.kind).device(cell.hardware.kind) or cell.hardware.kind
        metrics = {"provider_available": 0.0, "precision_supported": 0.0}
        # OpenVINO numbers devices of a kind (GPU.0, GPU.1): any of them is the device.
        if wanted not in available and not any(a.split(".")[0] == wanted for a in available):
            fix = (f"install the build of onnxruntime that ships {wanted} (e.g. onnxruntime-gpu for CUDA/TensorRT, "
                   "onnxruntime-openvino for OpenVINO) in this runtime's requirements, or drop the cell"
                   if cell.runtime.kind == "onnxruntime" else
                   f"install a {cell.runtime.kind} build with {wanted} support (and its device drivers) and run on "
                   "a machine that has the device")
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
        if cell.runtime.kind == "onnxruntime" and wanted != "CPUExecutionProvider":
            findings += _placement(ctx, wanted, runtime, metrics)
        # A converted onnxruntime model carries no note (`load_variant` drops it): torch int8 does, and OpenVINO
        # when the device applied another precision than the hint asked (CPU: f16 becomes bf16 without AVX512-FP16).
        if loaded.get("precision_note"):
            fix = (f"run {precision} on a device with native {precision} kernels, quantize the model for int8 "
                   "(NNCF), or accept the precision the device applies (numerical_parity grades it)"
                   if cell.runtime.kind == "openvino" else
                   f"export an already-{precision} model (e.g. torch.ao.quantization) or use an onnxruntime backend, "
                   "where modelcompat converts the model")
            findings.append(_finding(
                "precision_not_applied", Severity.WARN,
                f"{precision} is not applied by the {cell.backend.id} backend: {loaded['precision_note']}", "load",
                str(loaded.get("precision")), precision, fix))
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


def _placement(ctx: ValidationContext, provider: str, runtime: str, metrics: dict[str, float]) -> list[Finding]:
    """No silent CPU fallback: a profiled run of the payload (fallback allowed, as serving runs it) names the
    provider of every kernel. Adds kernels_on_provider, kernels_on_cpu and, for a provider that compiles fused
    subgraphs (OpenVINO's `OpenVINO-EP-subgraph_N`), provider_partitions: how many pieces it runs."""
    reply: dict[str, Any] = ctx.request("placement", artifact=str(ctx.model_path()),
                                        backend=ctx.cell.backend.model_dump(mode="json"),
                                        inputs=str(ctx.package.resolve(ctx.package.manifest.payload)))
    placement: dict[str, dict[str, int]] = reply.get("placement") or {}
    on_provider = placement.get(provider, {})
    on_cpu = {op: n for where, ops in placement.items() if where != provider for op, n in ops.items()}
    metrics["kernels_on_provider"] = float(sum(on_provider.values()))
    metrics["kernels_on_cpu"] = float(sum(on_cpu.values()))
    fused = [op for op in on_provider if "subgraph" in op.lower()]  # OpenVINO-EP-subgraph_3, TRTKernel_graph_…
    if fused:
        metrics["provider_partitions"] = float(len(fused))
    cpu_ops = ", ".join(f"{op}×{n}" if n > 1 else op for op, n in sorted(on_cpu.items()))
    if not on_provider:
        metrics["provider_available"] = 0.0
        return [_finding(
            "silent_cpu_fallback", Severity.ERROR,
            f"{runtime} accepted {provider} but it ran none of the model's kernels: all "
            f"{int(metrics['kernels_on_cpu'])} ran on CPU ({cpu_ops})", "run",
            f"kernels_on_provider=0; on CPU: {cpu_ops}"[:2000],
            f"every kernel on {provider}",
            f"{provider} takes none of these ops/types: check the provider's supported-operator list for this build, "
            "change them at export, or serve on the CPU provider knowingly")]
    if on_cpu:
        return [_finding(
            "partial_cpu_fallback", Severity.WARN,
            f"{provider} ran {int(metrics['kernels_on_provider'])} kernel(s) ({', '.join(sorted(on_provider))}); "
            f"{int(metrics['kernels_on_cpu'])} fell back to CPU: {cpu_ops}", "run",
            f"on {provider}: {', '.join(sorted(on_provider))}; on CPU: {cpu_ops}"[:2000], f"every kernel on {provider}",
            "each CPU kernel between provider partitions costs copies: change those ops/types at export to ones "
            f"{provider} implements (operator_coverage lists them), or accept the round-trips")]
    return []
