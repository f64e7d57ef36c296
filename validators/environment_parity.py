"""`environment_parity`: the package's declared requirements against the exact versions installed in the cell, and
the artifact's own provenance (the torch that saved a .pt2, an onnxruntime-produced ONNX, declared lineage steps)
against the cell's runtime: an artifact written by a newer framework than the cell runs is flagged.

Also records the environment fingerprint (python, platform, CPU flags, CUDA driver) as metrics.
"""
from __future__ import annotations

from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from modelcompat.matrix.families import FAMILIES
from modelcompat.model.provenance import ArtifactFacts, read_facts, release
from modelcompat.validators import Cell, Finding, ModelPackage, Outcome, Params, Severity, ValidationContext, Validator

# Distributions that provide one runtime kind: a requirement on another kind's library (torch on an
# onnxruntime cell) is about the other backends of the package, not this cell.
# (The runtime families' own lists: an openvino requirement on an onnxruntime cell is another backend's too.)
RUNTIME_DISTS: dict[str, tuple[str, ...]] = {kind: fam.distributions for kind, fam in FAMILIES.items()}
FINGERPRINT_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni",
                     "amx_tile", "asimd")


def _finding(code: str, message: str, remediation: str, **kw: Any) -> Finding:
    return Finding(code=f"environment_parity.{code}", severity=kw.pop("severity", Severity.ERROR), step="compare",
                   message=message, remediation=remediation, **kw)


def _installed(name: str, info: dict[str, Any]) -> tuple[str, str] | None:
    """(distribution, version) installed for requirement `name`; an onnxruntime variant build counts."""
    dists = info.get("distributions") or {}
    candidates = RUNTIME_DISTS["onnxruntime"] if name == "onnxruntime" else (name,)
    for dist in candidates:
        version = dists.get(dist)
        if version:
            return dist, str(version)
    return None


def _pin_hint(req: Requirement) -> str:
    pins = [s.version for s in req.specifier if s.operator in ("==", "===", ">=", "~=")]
    return f"{req.name}=={pins[0]}" if pins else str(req)


class EnvironmentParity(Validator):
    name = "environment_parity"
    version = "2"
    description = ("The package's declared requirements (e.g. onnxruntime>=1.17,<2, python>=3.10) hold in the "
                   "cell's environment, with the exact installed versions; the artifact was not saved by a newer "
                   "framework than the cell runs (a .pt2's torch, an onnxruntime-produced ONNX, declared lineage "
                   "steps); records python, platform, CPU flags and CUDA driver.")
    inputs = ("manifest.requirements", "manifest.provenance", "artifact", "runtime", "hardware")
    needs_model = False  # reads installed versions only

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        return None  # about the environment, whatever artifact the backend consumes

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        declared = ctx.package.manifest.requirements
        findings: list[Finding] = []
        parsed: list[Requirement] = []
        for text in declared:
            try:
                parsed.append(Requirement(text))
            except InvalidRequirement as exc:
                findings.append(_finding("requirement_invalid", f"requirement {text!r} in the manifest does not "
                                         f"parse: {exc}", "write it as a PEP 508 requirement, e.g. "
                                         "`onnxruntime>=1.17,<2` or `python>=3.10`", observed=text))
        wanted = sorted({canonicalize_name(r.name) for r in parsed if canonicalize_name(r.name) != "python"}
                        | set(RUNTIME_DISTS["onnxruntime"]) | {"torch", "numpy"})
        info = ctx.request("describe", kind=ctx.cell.runtime.kind, distributions=wanted)
        other_kinds = {d for kind, dists in RUNTIME_DISTS.items() if kind != ctx.cell.runtime.kind for d in dists}
        checked = unmet = 0
        for req in parsed:
            name = canonicalize_name(req.name)
            if req.marker is not None and not req.marker.evaluate(info.get("markers") or None):
                continue  # e.g. `; sys_platform == "win32"`: not this environment's requirement
            if name in other_kinds:
                continue  # a requirement of the package's other backends
            checked += 1
            if name == "python":
                installed: tuple[str, str] | None = ("python", str(info.get("python")))
            else:
                installed = _installed(name, info)
            if installed is None:
                unmet += 1
                findings.append(_finding(
                    "requirement_missing", f"requirement {str(req)!r}: {req.name} is not installed in "
                    f"{ctx.cell.runtime.id}", f"add `{_pin_hint(req)}` to the runtime's requirements in the "
                    "matrix (or drop the requirement from the manifest if serving does not need it)",
                    observed="not installed", expected=str(req)))
                continue
            dist, version = installed
            try:
                ok = req.specifier.contains(Version(version), prereleases=True)
            except InvalidVersion:
                ok = False
            if not ok:
                unmet += 1
                fix = (f"run the cell on Python {req.specifier} (the runtime's `python` in the matrix)"
                       if name == "python" else
                       f"install a {req.name} matching {req.specifier} in {ctx.cell.runtime.id} (e.g. "
                       f"`{_pin_hint(req)}`)")
                findings.append(_finding(
                    "requirement_unmet", f"requirement {str(req)!r} is not met in {ctx.cell.runtime.id}: "
                    f"{dist} {version} is installed", f"{fix}, or relax the package's requirement if it "
                    "was declared too strictly", observed=f"{dist}=={version}", expected=str(req)))
        findings += _newer_than_runtime(ctx, info)
        flags = set(info.get("cpu_flags") or [])
        gpus = info.get("gpus") or []
        metrics: dict[str, float] = {
            "requirements_declared": float(len(declared)),
            "requirements_checked": float(checked),
            "requirements_unmet": float(unmet),
            "cpu_count": float(info.get("cpu_count") or 0),
            "cuda_device_count": float(len(gpus)),
            **{f"cpu_flag_{flag}": float(flag in flags) for flag in FINGERPRINT_FLAGS},
        }
        if gpus:
            try:
                metrics["cuda_driver_major"] = float(str(gpus[0].get("driver_version", "")).split(".")[0])
            except ValueError:
                pass
        return Outcome(metrics=metrics, findings=findings, runtime_version=info.get("runtime_version"))


def _runtime_release(ctx: ValidationContext, info: dict[str, Any]) -> tuple[str, str] | None:
    """(distribution, version) of the cell's runtime library: torch, or the installed onnxruntime build."""
    kind = ctx.cell.runtime.kind
    if kind == "torch":
        version = (info.get("distributions") or {}).get("torch")
        return ("torch", str(version)) if version else None
    return _installed(kind, info) if kind == "onnxruntime" else None


def _newer(saved: str | None, running: str) -> bool:
    # Serialization changes with feature releases: major.minor decides, a patch release reads its minor's files.
    a, b = release(saved), release(running)
    return a is not None and b is not None and a[:2] > b[:2]


def _newer_than_runtime(ctx: ValidationContext, info: dict[str, Any]) -> list[Finding]:
    """Findings for an artifact that says (or whose declared lineage says) it was written by a newer release of the
    cell's runtime library than the cell runs: such files may use operators or serialization the runtime lacks."""
    artifact = ctx.package.artifact(ctx.cell.backend.consumes())
    running = _runtime_release(ctx, info)
    if artifact is None or running is None:
        return []
    dist, version = running
    facts: ArtifactFacts = read_facts(ctx.package.resolve(artifact.path), artifact.format, artifact.path)
    saved: list[tuple[str, str]] = []  # (who says so, version)
    if dist == "torch" and facts.torch_version:
        saved.append((f"{artifact.path} was saved by torch {facts.torch_version}", facts.torch_version))
    if dist.startswith("onnxruntime") and (facts.producer_name or "").startswith("onnxruntime"):
        saved.append((f"{artifact.path} was produced by {facts.producer_name} {facts.producer_version}",
                      facts.producer_version or ""))
    provenance = ctx.package.manifest.provenance
    for step in provenance.lineage if provenance else []:
        tool = canonicalize_name(step.tool)
        same_tool = tool == dist or (tool == "onnxruntime" and dist.startswith("onnxruntime"))
        if same_tool and step.artifact in (None, artifact.path):
            saved.append((f"its lineage step `{step.step}` ran {step.tool} {step.version}", step.version or ""))
    return [_finding(
        "artifact_newer_than_runtime", f"{who}, newer than the cell's {dist} {version} ({ctx.cell.runtime.id}): it may "
        "use operators or serialization features this runtime does not have", f"serve it on {dist} >= "
        f"{'.'.join(map(str, (release(when) or ())[:2]))} (the runtime's requirements in the matrix), or re-export "
        f"it with the {dist} the cell runs", severity=Severity.WARN, observed=f"{dist} {when}",
        expected=f"<= {dist} {version}") for who, when in saved if _newer(when, version)]
