"""The host side of the runtime contract: what a runtime family declares to the matrix and the planner.

A family is data plus two small functions: the backend keys it takes (`provider`, `mode`, `provider_options`),
the artifact format each backend reads, the device each hardware kind maps to, and the distributions whose
versions make up the runtime. The probe agent holds the other half (load, describe I/O, run, time, describe
environment) in `modelcompat_probe_agent/family_<kind>.py`; docs/runtimes.md shows how to add a family.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RuntimeFamily:
    """One inference library the matrix can name as a runtime `kind`.

    Attributes:
        kind: the name in matrices (`runtimes[].kind`, `backends[].runtime`).
        summary: one line for docs and error messages.
        provider: backends must name an execution provider (`provider`), and take no `mode`.
        modes: backend `mode` -> the artifact format that mode reads; empty: the family takes no `mode`.
        default_format: the artifact format read by a family without modes.
        provider_options: backends may pass `provider_options` (provider options, or device properties).
        devices: hardware kind (`cpu`, `cuda`, `gpu`, …) -> the device name the runtime uses there; a
            hardware kind missing here is one this family cannot drive.
        distributions: pip distributions providing the runtime, the usual one first (other builds after it).
        key_packages: host packages whose versions key a host runtime's checks (a host env holds much more).
        precision: how the family applies a backend's `precision` (docs).
    """

    kind: str
    summary: str
    provider: bool = False
    modes: Mapping[str, str] = field(default_factory=dict)
    default_format: str | None = None
    provider_options: bool = False
    devices: Mapping[str, str] = field(default_factory=dict)
    distributions: tuple[str, ...] = ()
    key_packages: tuple[str, ...] = ()
    precision: str = ""

    def consumes(self, backend: Any) -> str:
        """The artifact format a backend of this family reads (its `mode`'s, else the family's default)."""
        if self.modes:
            return self.modes.get(backend.mode or "", next(iter(self.modes.values())))
        assert self.default_format is not None, f"family {self.kind} declares neither modes nor a default format"
        return self.default_format

    def device(self, hardware_kind: str) -> str | None:
        """The runtime's name for the device of a hardware kind, or None when this family cannot drive it."""
        return self.devices.get(hardware_kind)

    def mode_hint(self) -> str:
        """`mode: eager`, `mode: torchscript` or `mode: export`."""
        names = [f"`mode: {m}`" for m in self.modes]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"
