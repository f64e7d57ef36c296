"""`opset_support`: the ONNX model's IR version and opset per domain against what the cell's onnxruntime accepts.

onnxruntime publishes no API for its maxima (and its docs table lags), so they are learned once per
runtime version by loading tiny models in the cell's probe, and cached on disk.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import Field

from modelcompat.files.atomic import write_text
from modelcompat.validators import Cell, Finding, ModelPackage, Outcome, Params, Severity, ValidationContext, Validator

# Bump when what is probed or how changes: cached capabilities of another version are re-learned.
CAPABILITY_FORMAT = 1
OPSET_CANDIDATES: dict[str, range] = {"ai.onnx": range(7, 31), "ai.onnx.ml": range(1, 9)}
IR_CANDIDATES = range(3, 16)


class OpsetSupportParams(Params):
    relearn: bool = Field(False, description="Probe the runtime again instead of using its cached capabilities.")


def domain_name(domain: str) -> str:
    return domain or "ai.onnx"


def model_opsets(model: Any) -> dict[str, int]:
    """Opset per domain as the model imports it (`""` spelled `ai.onnx`)."""
    return {domain_name(o.domain): int(o.version) for o in model.opset_import}


def _probe_models(folder: Path) -> dict[str, tuple[str, int]]:
    """One tiny Identity model per candidate (domain, opset) and IR version; path -> (what, value)."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)

    def save(name: str, opsets: list[tuple[str, int]], ir: int) -> str:
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=ir)
        path = folder / f"{name}.onnx"
        onnx.save(model, path)
        return str(path)

    paths: dict[str, tuple[str, int]] = {}
    # The domain check is on the import stamp alone: an unused ai.onnx.ml import is refused just the same.
    for version in OPSET_CANDIDATES["ai.onnx"]:
        paths[save(f"opset-ai.onnx-{version}", [("", version)], 7)] = ("ai.onnx", version)
    for version in OPSET_CANDIDATES["ai.onnx.ml"]:
        paths[save(f"opset-ai.onnx.ml-{version}", [("", 8), ("ai.onnx.ml", version)], 7)] = ("ai.onnx.ml", version)
    for ir in IR_CANDIDATES:
        paths[save(f"ir-{ir}", [("", 8)], ir)] = ("ir", ir)
    return paths


def _max_contiguous(accepted: set[int], candidates: range) -> int | None:
    """The largest candidate such that it and every smaller candidate loaded (None if the first did not)."""
    best = None
    for value in candidates:
        if value not in accepted:
            break
        best = value
    return best


def learn_capabilities(ctx: ValidationContext, relearn: bool = False) -> dict[str, Any]:
    """The cell's onnxruntime maxima: `{"version", "max_ir_version", "max_opset": {domain: n}, ...}`, cached
    in `ctx.capabilities_dir` (`$MODELCOMPAT_CAPABILITIES`, default `capabilities/` in the env cache: shared
    like the venvs)."""
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
        models = _probe_models(ctx.workdir / "opset-probe")
        result = ctx.request("try_load_many", paths=list(models))
        accepted: dict[str, set[int]] = {}
        refusals: dict[str, str] = {}
        for item in result["results"]:
            what, value = models[item["path"]]
            if item["ok"]:
                accepted.setdefault(what, set()).add(value)
            else:
                refusals.setdefault(what, item.get("message", ""))
        caps = {
            "format": CAPABILITY_FORMAT,
            "runtime": "onnxruntime",
            "version": version,
            "max_ir_version": _max_contiguous(accepted.get("ir", set()), IR_CANDIDATES),
            "max_opset": {d: _max_contiguous(accepted.get(d, set()), r) for d, r in OPSET_CANDIDATES.items()},
            "first_refusal": refusals,  # the runtime's own words, for the report
        }
        # atomic (a unique temporary name: two workers learning one version never collide); a cache: no fsync
        write_text(path, json.dumps(caps, indent=2, sort_keys=True), durable=False)
        return caps


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def oldest_supporting(folder: Path, what: str, value: int) -> str | None:
    """The oldest onnxruntime learned on this machine that accepts `value` (an IR version or a domain's opset)."""
    best: str | None = None
    for path in folder.glob("onnxruntime-*.json"):
        try:
            caps = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if caps.get("format") != CAPABILITY_FORMAT:
            continue
        limit = caps.get("max_ir_version") if what == "ir" else (caps.get("max_opset") or {}).get(what)
        if limit is not None and limit >= value and (best is None or _version_key(caps["version"]) < _version_key(best)):
            best = caps["version"]
    return best


def _newer_runtime(folder: Path, what: str, value: int, current: str) -> str:
    version = oldest_supporting(folder, what, value)
    if version and _version_key(version) > _version_key(current):
        return f"onnxruntime >= {version} (the oldest release learned on this machine that accepts it)"
    return f"an onnxruntime newer than {current}"


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
        return super().applies_to(cell, package)

    def validate(self, ctx: ValidationContext, params: OpsetSupportParams) -> Outcome:
        import onnx

        try:
            # Static: the graph only, never the (possibly huge, possibly escaping) external data.
            model = onnx.load(str(ctx.artifact_path), load_external_data=False)
        except Exception as exc:  # not an ONNX protobuf at all
            return Outcome(findings=[Finding(
                code="opset_support.unreadable", severity=Severity.ERROR, step="read",
                message=f"{ctx.artifact.path} is not a readable ONNX model: {type(exc).__name__}: {exc}"[:2000],
                remediation="re-export the model; see the loadability report")])
        caps = learn_capabilities(ctx, params.relearn)
        current = caps["version"]
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
                                f"model.ir_version = {max_ir} if no newer IR feature is used), or use "
                                + _newer_runtime(ctx.capabilities_dir, "ir", model.ir_version, current)))
        for domain, version in sorted(model_opsets(model).items()):
            key = _metric_name(domain)
            metrics[f"opset_{key}"] = float(version)
            limit = (caps.get("max_opset") or {}).get(domain)
            if limit is None:
                continue  # a domain not learned (e.g. com.microsoft): the loadability check covers it
            metrics[f"max_supported_opset_{key}"] = float(limit)
            if version > limit:
                how = (f"torch.onnx.export(..., opset_version={limit}) or onnx.version_converter"
                       if domain == "ai.onnx" else f"a converter emitting {domain} opset {limit}")
                findings.append(Finding(
                    code="opset_support.opset_too_new", severity=Severity.ERROR, step="compare",
                    message=f"{ctx.artifact.path} imports {domain} opset {version}; onnxruntime {current} "
                            f"accepts {domain} opset <= {limit}",
                    observed=f"{domain} {version}", expected=f"{domain} <= {limit}",
                    remediation=f"re-export with opset <= {limit} ({how}), or use "
                                + _newer_runtime(ctx.capabilities_dir, domain, version, current)))
        return Outcome(metrics=metrics, findings=findings, runtime_version=f"onnxruntime {current}")
