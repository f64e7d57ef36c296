"""`environment_parity`: the package's declared requirements against the exact versions installed in the cell.

Also records the environment fingerprint (python, platform, CPU flags, CUDA driver) as metrics.
"""
from __future__ import annotations

from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from modelcompat.validators import Cell, Finding, ModelPackage, Outcome, Params, Severity, ValidationContext, Validator

# Distributions that provide one runtime kind: a requirement on another kind's library (torch on an
# onnxruntime cell) is about the other backends of the package, not this cell.
RUNTIME_DISTS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"),
    "torch": ("torch",),
}
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
    version = "1"
    description = ("The package's declared requirements (e.g. onnxruntime>=1.17,<2, python>=3.10) hold in the "
                   "cell's environment, with the exact installed versions; records python, platform, CPU flags "
                   "and CUDA driver.")
    inputs = ("manifest.requirements", "runtime", "hardware")
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
