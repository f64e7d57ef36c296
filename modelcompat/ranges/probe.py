"""One probe of a range: the model checked on one release, as a cell of its own run through the harness.

The release's cell is `<prefix>-<version>/<hardware>/<backend>`, its runtime a venv from the runtime cache
with `<project>==<version>` (plus `numpy<2` for onnxruntime before 1.19). The probe's key hashes what its
result depends on (the package inputs each selected validator declares, its code and params, the hardware,
backend, release and this interpreter), so a stored probe is reused by any later range with the same key.
"""
from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeKind, RuntimeSpec
from modelcompat.model.package import ModelPackage
from modelcompat.planning.cache_keys import cache_key, input_components
from modelcompat.results.report import Finding, Report, Severity, Status
from modelcompat.runtime.releases import requirements_for
from modelcompat.validators.base import Validator
from modelcompat.validators.registry import Registry

# The pip project that provides each runtime kind, and the short prefix of its probe cells' runtime id.
PROJECTS: dict[str, tuple[str, str]] = {"onnxruntime": ("onnxruntime", "ort")}
DEFAULT_VALIDATORS = ("loadability", "operator_coverage", "numerical_parity")
PASSING = ("pass", "warn")


@dataclass(frozen=True)
class Target:
    """What every probe of one range shares: the runtime kind, hardware, backend and checks."""

    kind: RuntimeKind
    hardware: HardwareSpec
    backend: BackendSpec
    validators: tuple[str, ...]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return PROJECTS[self.kind][0]

    def runtime(self, version: str) -> RuntimeSpec:
        return RuntimeSpec(id=f"{PROJECTS[self.kind][1]}-{version}", kind=self.kind, env="venv",
                           requirements=requirements_for(self.project, version))

    def cell(self, version: str) -> Cell:
        return Cell(runtime=self.runtime(version), hardware=self.hardware, backend=self.backend)


@dataclass(frozen=True)
class Probe:
    """One release's verdict for the range: pass/warn (in the window), fail or error, and why."""

    release: str
    status: str
    finding: str | None
    key: str
    reports: tuple[Report, ...]
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.status in PASSING


def _without_runtime(validator: type[Validator]) -> type[Validator]:
    # The runtime input is keyed as the release (below), known before its venv exists; the rest of the
    # validator's declared inputs, its code fingerprint (module + version) and params are keyed as run keys them.
    inputs = tuple(i for i in validator.inputs if i != "runtime")
    return type(validator.__name__, (validator,), {"inputs": inputs, "__module__": validator.__module__})


def probe_key(target: Target, version: str, package: ModelPackage, registry: Registry) -> str:
    """The stored-probe key of this release for this package, target and checks."""
    cell = target.cell(version)
    components: dict[str, Any] = {
        "release": " ".join(cell.runtime.requirements),
        "python": f"{sys.version_info.major}.{sys.version_info.minor} {sys.platform} {platform.machine()}",
    }
    for name in target.validators:
        cls = registry.validators.get(name)
        components[name] = ("not installed" if cls is None else
                            input_components(_without_runtime(cls), target.params.get(name, {}), cell, package, None))
    return cache_key(components)


def run_probe(target: Target, version: str, package: ModelPackage, registry: Registry, *, run_id: str,
              key: str, env_cache: str | None = None) -> Probe:
    """Check the package on one release: provision its venv (cached) and run the target's checks in one probe."""
    job = CellJob(cell=target.cell(version), package_root=str(package.root), validators=target.validators,
                  params=target.params, run_id=run_id, env_cache=env_cache)
    return summarize(version, key, check_cell(job, registry))


def summarize(version: str, key: str, reports: list[Report] | tuple[Report, ...], reused: bool = False) -> Probe:
    """The release's status (fail over error over warn over pass; skipped checks do not count) and first finding."""
    statuses = {r.status for r in reports}
    status = next((s for s in (Status.FAIL, Status.ERROR, Status.WARN) if s in statuses), Status.PASS)
    if statuses <= {Status.SKIPPED}:
        # Nothing ran (every check not applicable): no evidence the release works, so it is not in the range.
        return Probe(version, Status.SKIPPED.value, "every check was skipped: nothing ran on this release", key,
                     tuple(reports), reused)
    finding = None
    if status in (Status.FAIL, Status.ERROR):
        report = next(r for r in reports if r.status == status)
        first = next((f for f in report.findings if f.severity == Severity.ERROR), None)
        finding = describe(first) if first else f"{report.validator}: {status.value}"
    return Probe(version, status.value, finding, key, tuple(reports), reused)


_OPSET = re.compile(r"Opset (\d+) is under development.*?domain (\S+?) is till opset (\d+)", re.S)
_KERNEL = re.compile(r"Could not find an implementation for (\w+)\((\d+)\)")
_IR = re.compile(r"(?:IR|ir) version:? (\d+)\D+max supported IR version:? (\d+)")


def describe(finding: Finding) -> str:
    """`code, detail`: the needed and supported value where the message states them (`ai.onnx 21 > 20`)."""
    text = finding.message
    if (m := _OPSET.search(text)) is not None:
        detail = f"{m[2]} {m[1]} > {m[3]}"
    elif (m := _IR.search(text)) is not None:
        detail = f"IR {m[1]} > {m[2]}"
    elif (m := _KERNEL.search(text)) is not None:
        detail = f"no kernel for {m[1]}({m[2]})"
    elif finding.observed and finding.expected:
        detail = f"{finding.observed} (expected {finding.expected})"
    else:
        detail = text.split("\n")[0]
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return f"{finding.code}, {detail}"
