"""`unsafe_serialization`: scan every pickle in the artifact without unpickling it, against an allowlist.

Also: ONNX external data that points outside the package, zip archives whose unpacked size is absurd,
and a torch runtime whose `weights_only=True` loader has known bypasses. Static: nothing is ever loaded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from modelcompat.model.external_data import external_refs, location_problem
from modelcompat.scanning import allowlist, scan_file
from modelcompat.scanning.pickles import scan_pickle  # noqa: F401 - re-exported: tests and callers name it here
from modelcompat.scanning.scan import Limits
from modelcompat.validators import Finding, Outcome, Params, Severity, ValidationContext, Validator

# The allowlist and the scanner live in modelcompat.scanning (also run by `modelcompat scan`, `package` and
# `check` before anything is read); this validator turns a scan into findings.
ALLOWED_GLOBALS = allowlist.ALLOWED_GLOBALS
# CVE-2025-32434: torch.load(weights_only=True) can still execute code before 2.6.0.
TORCH_WEIGHTS_ONLY_FIXED = (2, 6, 0)


class UnsafeSerializationParams(Params):
    extra_allowed_globals: list[str] = Field(
        default_factory=list,
        description="More `module.name` globals to accept in pickles (e.g. your own checkpoint classes). "
                    "Every entry is code the loader will import and call: add only what you trust.")
    max_uncompressed_mb: float = Field(
        16384.0, gt=0, description="An archive unpacking to more than this many MiB is a zip bomb.")
    max_compression_ratio: float = Field(
        200.0, gt=1, description="A member compressed more than this (uncompressed/compressed) is a zip bomb "
                                 "(torch archives store members uncompressed: ratio 1).")
    ratio_min_member_mb: float = Field(
        1.0, ge=0, description="The ratio check applies to members at least this large (tiny members compress "
                               "absurdly well legitimately).")
    torch_bypass_severity: Literal["warn", "error"] = Field(
        "warn", description="Severity of `torch_weights_only_bypass` (`error` also blocks the other validators).")


# ---------------------------------------------------------------------------------------------- scanner

# Threat kind -> finding code (the codes predate modelcompat.scanning; stored reports keep meaning the same).
_CODES = {"global": "disallowed_global", "unresolved_global": "unresolved_global", "malformed": "unparseable_pickle",
          "archive_limit": "zip_bomb", "zip_anomaly": "zip_anomaly", "torchscript_op": "torchscript_gadget",
          "external_data": "external_data_escape"}
_FIXES = {
    "global": "do not load this artifact; re-export the model from trusted code (state_dict + safetensors, "
              "torch.export, ONNX); if the global is your own trusted class, add it to `extra_allowed_globals`",
    "unresolved_global": "a legitimate checkpoint never hides what it imports: do not load this file; re-save the "
                         "weights with safetensors or torch.save(state_dict)",
    "malformed": "a truncated or crafted file: re-export the artifact",
    "archive_limit": "refuse the artifact; if the model is really this large, raise `max_uncompressed_mb`",
    "zip_anomaly": "a model archive written by torch or zipfile never has this: re-export the artifact",
    "torchscript_op": "do not load this archive: re-export it with torch.jit.trace/script from trusted code",
    "external_data": "keep external data as regular files inside the package folder and re-package",
}


@dataclass
class ScanResult:
    """Every finding of one artifact scan, plus counts for metrics."""

    findings: list[Finding] = field(default_factory=list)
    pickles_scanned: int = 0
    globals_seen: int = 0
    uncompressed_bytes: int = 0


class _Scanner:
    def __init__(self, params: UnsafeSerializationParams) -> None:
        self.params = params
        self.limits = Limits(max_uncompressed_bytes=int(params.max_uncompressed_mb * (1 << 20)),
                             max_compression_ratio=params.max_compression_ratio,
                             ratio_min_member_bytes=int(params.ratio_min_member_mb * (1 << 20)))
        self.result = ScanResult()

    def check_file(self, path: Path, label: str) -> None:
        scan = scan_file(path, extra_allowed=self.params.extra_allowed_globals, limits=self.limits, label=label)
        self.result.pickles_scanned += scan.pickles
        self.result.globals_seen += scan.globals
        self.result.uncompressed_bytes += scan.unpacked
        for threat in scan.threats:
            where = threat.where + (f" ({threat.opcode} at byte {threat.offset})" if threat.opcode else "")
            self.result.findings.append(Finding(
                code=f"unsafe_serialization.{_CODES[threat.kind]}", severity=Severity.ERROR, step="scan",
                message=f"{where}: {threat.message}", remediation=_FIXES[threat.kind],
                observed=threat.target or threat.kind))


def check_external_data(model_path: Path, package_root: Path) -> list[Finding]:
    """External-data locations of an ONNX model that are absolute, climb out with '..', go through a symlink
    or resolve outside the package folder: one finding per location. Only the graph is parsed, never the data."""
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception:  # not a readable ONNX file: loadability says so; nothing to check here
        return []
    root = package_root.resolve()
    findings = []
    for ref in external_refs(model):
        resolved = (model_path.parent / ref.location).resolve()
        problem = location_problem(ref.location, model_path.parent)
        if problem is None and not resolved.is_relative_to(root):
            problem = "resolves outside the package folder"
        if problem is None:
            continue
        findings.append(Finding(
            code="unsafe_serialization.external_data_escape", severity=Severity.ERROR, step="scan",
            message=f"tensor {ref.tensors[0]!r} of {model_path.name} (and {len(ref.tensors) - 1} more) reads its "
                    f"data from {ref.location!r}, which {problem} ({resolved})"
                    if len(ref.tensors) > 1 else
                    f"tensor {ref.tensors[0]!r} of {model_path.name} reads its data from {ref.location!r}, "
                    f"which {problem} ({resolved})",
            observed=ref.location, expected="a relative path to a regular file inside the package folder",
            remediation="a model must not read arbitrary files of the serving host: save the external data "
                        "next to the model (onnx.save_model(..., save_as_external_data=True, "
                        "location='model.onnx.data')), keep it a regular file (no symlink) and re-package"))
    return findings


# ---------------------------------------------------------------------------------- torch version check

def _version_tuple(version: str) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(g or 0) for g in match.groups()) if match else None


def torch_bypass_finding(torch_version: str, severity: Severity) -> Finding | None:
    """A finding when `torch_version` predates the fix for the weights_only bypass (CVE-2025-32434)."""
    parsed = _version_tuple(torch_version)
    if parsed is None or parsed >= TORCH_WEIGHTS_ONLY_FIXED:
        return None
    fixed = ".".join(map(str, TORCH_WEIGHTS_ONLY_FIXED))
    return Finding(
        code="unsafe_serialization.torch_weights_only_bypass", severity=severity, step="runtime",
        message=f"the cell's torch {torch_version} predates {fixed}: torch.load(weights_only=True) can still "
                "execute code from a crafted checkpoint there (CVE-2025-32434)",
        observed=torch_version, expected=f">= {fixed}",
        remediation=f"upgrade the serving runtime to torch >= {fixed}; until then load only artifacts this "
                    "scan passes and that come from a trusted source")


def cell_torch_version(ctx: ValidationContext) -> str | None:
    """The torch the cell runs, without building anything: the host's, a built venv's, or an exact pin."""
    installed = ctx.installed_version("torch")
    if installed or ctx.cell.runtime.env == "host":
        return installed
    for req in ctx.cell.runtime.requirements:
        match = re.fullmatch(r"\s*torch\s*===?\s*([0-9][^\s;,]*)\s*", req)
        if match:
            return match.group(1)
    return None


class UnsafeSerialization(Validator):
    name = "unsafe_serialization"
    version = "2"  # 2: modelcompat.scanning (zip header tricks, TorchScript file ops, joblib, object arrays)
    description = ("Pickles in the artifact import only allowlisted tensor-rebuilding globals (scanned, never "
                   "unpickled); no external data outside the package; no zip bomb; no torch with known "
                   "weights_only bypasses. A failure blocks every validator that would load the artifact.")
    Params = UnsafeSerializationParams
    inputs = ("artifact", "runtime", "backend")
    needs_probe = False
    gate = True  # see Validator.gate: an artifact that fails this scan is never loaded (issue 3)

    def validate(self, ctx: ValidationContext, params: UnsafeSerializationParams) -> Outcome:
        scanner = _Scanner(params)
        path = ctx.artifact_path
        if ctx.artifact.format != "onnx":  # ONNX holds no pickle; its data locations are checked against the package
            scanner.check_file(path, ctx.artifact.path)
        findings = scanner.result.findings
        if ctx.artifact.format == "onnx":
            findings += check_external_data(path, ctx.package.root)
        elif ctx.cell.runtime.kind == "torch":
            version = cell_torch_version(ctx)
            if version is not None:
                bypass = torch_bypass_finding(version, Severity(params.torch_bypass_severity))
                if bypass is not None:
                    findings.append(bypass)
        metrics = {"pickles_scanned": float(scanner.result.pickles_scanned),
                   "globals_seen": float(scanner.result.globals_seen),
                   "archive_uncompressed_bytes": float(scanner.result.uncompressed_bytes)}
        return Outcome(metrics=metrics, findings=findings)
