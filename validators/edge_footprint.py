"""`edge_footprint`: on an ExecuTorch cell, the program's size and the memory it needs, against the manifest's edge
budgets (`max_program_bytes`, `max_rss_mb`); an ExecuTorch cell that lowered the .pt2 also reports the lowering.
"""
from __future__ import annotations

from pydantic import Field

from modelcompat.matrix.cells import Cell
from modelcompat.model.package import ModelPackage
from modelcompat.validators import Finding, Outcome, Params, Severity, ValidationContext, Validator
from modelcompat.validators.loadability import lowering_finding, lowering_metrics

SIZE_FIX = ("shrink the program: quantize it (XNNPACK 8-bit, e.g. torchao's int8 weight-only or the XNNPACK "
            "quantizer), prune or distil the model, or move weights to a separate .ptd file - or raise "
            "budgets.max_program_bytes if the device has the space")
RSS_FIX = ("lower the activation memory: a smaller batch or input size (memory is planned for the upper bound of "
           "every dynamic dim), a quantized model, or the XNNPACK delegate's fused kernels; check the planned "
           "buffers with executorch's devtools - or raise budgets.max_rss_mb if the device has the memory")


class EdgeFootprintParams(Params):
    timeout_s: float = Field(600.0, gt=0, description="How long the fresh runtime process that measures memory "
                             "may take to load and run the program once.")


class EdgeFootprint(Validator):
    name = "edge_footprint"
    version = "1"
    description = ("ExecuTorch cells: program size (the .pte the cell runs) and the resident memory loading and "
                   "running it once adds to a fresh runtime process, against the manifest's edge budgets "
                   "(max_program_bytes, max_rss_mb); the lowering of a .pt2 (delegated vs portable ops, time).")
    Params = EdgeFootprintParams
    inputs = ("artifact", "manifest.budgets", "payload", "runtime", "hardware", "backend")

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        if cell.runtime.kind != "executorch":
            return f"edge budgets are checked on ExecuTorch cells; runtime {cell.runtime.id} is {cell.runtime.kind}"
        return super().applies_to(cell, package)

    def validate(self, ctx: ValidationContext, params: EdgeFootprintParams) -> Outcome:
        loaded = ctx.load()
        measured = ctx.request("footprint", inputs=str(ctx.package.resolve(ctx.package.manifest.payload)),
                               backend=ctx.cell.backend.model_dump(mode="json"), run_timeout_s=params.timeout_s,
                               timeout_s=params.timeout_s + 60)
        metrics = {name: float(measured[name]) for name in ("program_bytes", "program_rss_mb", "loaded_rss_mb",
                                                            "peak_rss_mb", "baseline_rss_mb")}
        findings: list[Finding] = []
        lowering = loaded.get("lowering")
        if lowering:
            metrics.update(lowering_metrics(lowering))
            metrics["program_bytes"] = float(measured["program_bytes"])
            findings.append(lowering_finding(ctx, lowering).model_copy(update={"code": "edge_footprint.lowered"}))
        findings += _budget_findings(ctx, metrics)
        return Outcome(metrics=metrics, findings=findings, runtime_version=measured.get("runtime_version"))


def _budget_findings(ctx: ValidationContext, metrics: dict[str, float]) -> list[Finding]:
    budgets = ctx.package.manifest.budgets
    findings = []
    size, rss = metrics["program_bytes"], metrics["program_rss_mb"]
    if budgets.max_program_bytes is not None and size > budgets.max_program_bytes:
        findings.append(Finding(
            code="edge_footprint.program_too_large", severity=Severity.ERROR, step="size",
            message=f"the ExecuTorch program {ctx.cell.id} runs is {int(size):,} bytes, over the budget "
                    f"max_program_bytes {budgets.max_program_bytes:,}",
            observed=f"program_bytes={int(size)}", expected=f"max_program_bytes<={budgets.max_program_bytes}",
            remediation=SIZE_FIX))
    if budgets.max_rss_mb is not None and rss > budgets.max_rss_mb:
        findings.append(Finding(
            code="edge_footprint.memory_exceeded", severity=Severity.ERROR, step="run",
            message=f"loading and running the program once added {rss:.4g} MiB of resident memory to a fresh "
                    f"ExecuTorch runtime process on {ctx.cell.id} (peak {metrics['peak_rss_mb']:.4g} MiB over "
                    f"{metrics['baseline_rss_mb']:.4g} MiB before loading), over the budget max_rss_mb "
                    f"{budgets.max_rss_mb:g}",
            observed=f"program_rss_mb={rss:.6g}", expected=f"max_rss_mb<={budgets.max_rss_mb:g}",
            remediation=RSS_FIX))
    return findings
