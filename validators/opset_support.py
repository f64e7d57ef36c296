"""`opset_support`: the ONNX model's IR version and the opset of every domain it imports (`ai.onnx`, `ai.onnx.ml`,
`com.microsoft`, custom ones) against what the cell's onnxruntime accepts.

onnxruntime publishes no API for its maxima, so they are learned once per runtime version by loading tiny models
in the cell's probe and cached on disk; remediations name the oldest release that supports the model, from the
table shipped with modelcompat (validators/capabilities.py) extended by that cache.
"""
from __future__ import annotations

import json
import re
from typing import Any

from filelock import FileLock
from pydantic import Field

from modelcompat.files.atomic import write_text
from modelcompat.validators import Cell, Finding, ModelPackage, Outcome, Params, Severity, ValidationContext, Validator
from modelcompat.validators.capabilities import (
    CAPABILITY_FORMAT,
    custom_domain_fix,
    domain_name,
    graph_nodes,
    model_needs,
    probe_models,
    read_probe,
    registered_anywhere,
    upgrade_remediation,
)


class OpsetSupportParams(Params):
    relearn: bool = Field(False, description="Probe the runtime again instead of using its cached capabilities.")


def model_opsets(model: Any) -> dict[str, int]:
    """Opset per domain as the model imports it (`""` spelled `ai.onnx`)."""
    return {domain_name(o.domain): int(o.version) for o in model.opset_import}


def learn_capabilities(ctx: ValidationContext, relearn: bool = False) -> dict[str, Any]:
    """The cell's onnxruntime maxima: `{"version", "max_ir_version", "max_opset": {domain: n}, ...}` (a domain
    absent from `max_opset` is not registered by that runtime), cached in `ctx.capabilities_dir`
    (`$MODELCOMPAT_CAPABILITIES`, default `capabilities/` in the env cache: shared like the venvs)."""
    info = ctx.request("describe", kind="onnxruntime")
    version = str(info.get("version"))
    folder = ctx.capabilities_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"onnxruntime-{re.sub(r'[^A-Za-z0-9_.+-]', '_', version)}.json"
    with FileLock(str(path) + ".lock", timeout=600):  # concurrent cells of one runtime learn it once
        if not relearn:
            try:
                cached = json.loads(path.read_text())
                if cached.get("format") == CAPABILITY_FORMAT and cached.get("version") == version:
                    return cached
            except (OSError, ValueError):
                pass
        models = probe_models(ctx.workdir / "opset-probe")
        caps = read_probe(models, ctx.request("try_load_many", paths=list(models)))
        caps["version"] = version
        # atomic (a unique temporary name: two workers learning one version never collide); a cache: no fsync
        write_text(path, json.dumps(caps, indent=2, sort_keys=True), durable=False)
        return caps


def _metric_name(domain: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", domain.lower()).strip("_")


class OpsetSupport(Validator):
    name = "opset_support"
    version = "1"
    description = ("The ONNX model's IR version and opset per domain are within what the cell's onnxruntime "
                   "accepts (maxima learned by probing each runtime version once).")
    Params = OpsetSupportParams
    inputs = ("artifact", "runtime", "backend")
    needs_model = False  # explains why a model does not load: it must run when it does not

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        if cell.backend.consumes() != "onnx":
            return f"opset and IR versions are ONNX notions; backend {cell.backend.id} runs {cell.backend.consumes()}"
        if cell.runtime.kind != "onnxruntime":
            # The maxima are learned from which tiny models an onnxruntime session takes; another runtime reading
            # ONNX (OpenVINO's frontend) names what it cannot convert itself (loadability, operator_coverage).
            return (f"opset and IR maxima are learned per onnxruntime release; {cell.runtime.id} is "
                    f"{cell.runtime.kind} (see loadability and operator_coverage)")
        return super().applies_to(cell, package)

    def validate(self, ctx: ValidationContext, params: OpsetSupportParams) -> Outcome:
        import onnx

        try:
            # Static: the graph only, never the (possibly huge, possibly escaping) external data.
            model = onnx.load(str(ctx.artifact_path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - not an ONNX protobuf at all
            return Outcome(findings=[Finding(
                code="opset_support.unreadable", severity=Severity.ERROR, step="read",
                message=f"{ctx.artifact.path} is not a readable ONNX model: {type(exc).__name__}: {exc}"[:2000],
                remediation="re-export the model; see the loadability report")])
        caps = learn_capabilities(ctx, params.relearn)
        current = caps["version"]
        needs = model_needs(model)
        upgrade = upgrade_remediation(needs, current, ctx.capabilities_dir)
        findings: list[Finding] = []
        metrics: dict[str, float] = {"ir_version": float(model.ir_version)}
        max_ir = caps.get("max_ir_version")
        if max_ir is not None:
            metrics["max_supported_ir_version"] = float(max_ir)
            if model.ir_version > max_ir:
                findings.append(Finding(
                    code="opset_support.ir_version_too_new", severity=Severity.ERROR, step="compare",
                    message=f"{ctx.artifact.path} has IR version {model.ir_version}; onnxruntime {current} "
                            f"accepts IR <= {max_ir}",
                    observed=str(model.ir_version), expected=f"<= {max_ir}",
                    remediation=f"re-export with IR version <= {max_ir} (an older onnx package, or set "
                                f"model.ir_version = {max_ir} if no newer IR feature is used), or use {upgrade}"))
        local = {f.domain for f in model.functions}
        ops: dict[str, set[str]] = {}
        for node in graph_nodes(model):
            ops.setdefault(domain_name(node.domain), set()).add(node.op_type)
        for domain, version in sorted(model_opsets(model).items()):
            key = _metric_name(domain)
            metrics[f"opset_{key}"] = float(version)
            limit = (caps.get("max_opset") or {}).get(domain)
            if limit is not None:
                metrics[f"max_supported_opset_{key}"] = float(limit)
                if version > limit:
                    findings.append(self._too_new(ctx, domain, version, limit, current, upgrade))
            elif domain not in local and ops.get(domain):
                # Not registered here: the stamp loads, but no node of that domain resolves to a kernel.
                findings.append(self._unregistered(ctx, domain, sorted(ops[domain]), current, upgrade))
            # else: an import no node uses, or the model's own functions: nothing for the runtime to resolve
        return Outcome(metrics=metrics, findings=findings, runtime_version=f"onnxruntime {current}")

    @staticmethod
    def _too_new(ctx: ValidationContext, domain: str, version: int, limit: int, current: str, upgrade: str) -> Finding:
        how = (f"torch.onnx.export(..., opset_version={limit}) or onnx.version_converter"
               if domain == "ai.onnx" else f"a converter emitting {domain} opset {limit}")
        return Finding(
            code="opset_support.opset_too_new", severity=Severity.ERROR, step="compare",
            message=f"{ctx.artifact.path} imports {domain} opset {version}; onnxruntime {current} "
                    f"accepts {domain} opset <= {limit}",
            observed=f"{domain} {version}", expected=f"{domain} <= {limit}",
            remediation=f"re-export with {domain} opset <= {limit} ({how}), or use {upgrade}")

    @staticmethod
    def _unregistered(ctx: ValidationContext, domain: str, ops: list[str], current: str, upgrade: str) -> Finding:
        names = ", ".join(ops[:10]) + (f" and {len(ops) - 10} more" if len(ops) > 10 else "")
        if registered_anywhere(domain, ctx.capabilities_dir) is not None:
            return Finding(
                code="opset_support.domain_unsupported", severity=Severity.ERROR, step="compare",
                message=f"{ctx.artifact.path} has {domain} nodes ({names}); onnxruntime {current} does not "
                        f"register the {domain} domain",
                observed=f"{domain} nodes: {names}", expected=f"a runtime registering {domain}",
                remediation=f"use {upgrade}, or re-export without {domain} nodes")
        return Finding(
            code="opset_support.unknown_domain", severity=Severity.ERROR, step="compare",
            message=f"{ctx.artifact.path} has nodes of the custom domain {domain} ({names}), which no onnxruntime "
                    f"release registers (this cell runs {current}): they load only with the custom op library "
                    "that implements them",
            observed=f"{domain} nodes: {names}", expected="domains onnxruntime registers, or a registered library",
            remediation=custom_domain_fix(domain))
