"""What a scan says about one file: its verdict and every threat with where it sits (member, byte offset)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """`malicious`: loading it would run or read something beyond rebuilding tensors (or it is built to evade
    scanners); `malformed`: it claims a format it does not follow, so no loader should be trusted with it;
    `clean`: every pickle imports only allowlisted globals and every structure checks out; `skipped`: not a
    format that can carry code (text, images, raw tensor bytes)."""

    CLEAN = "clean"
    MALICIOUS = "malicious"
    MALFORMED = "malformed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Threat:
    """One reason for a verdict.

    kind: `global` (a pickle imports/calls `target`), `unresolved_global`, `torchscript_op`, `external_data`,
    `zip_anomaly`, `archive_limit`, `malformed`.
    where: the file, then `!member` per archive level (`model.pt!archive/data.pkl`).
    offset: byte offset of the opcode (in the pickle stream) or of the header, when there is one.
    """

    kind: str
    message: str
    where: str
    target: str | None = None
    offset: int | None = None
    opcode: str | None = None

    @property
    def malicious(self) -> bool:
        return self.kind != "malformed"


@dataclass
class FileScan:
    """The scan of one file: its detected format, verdict, threats, and what was looked at."""

    path: str
    format: str
    threats: list[Threat] = field(default_factory=list)
    pickles: int = 0
    globals: int = 0
    unpacked: int = 0  # bytes the archives in it declare they unpack to
    note: str = ""

    @property
    def verdict(self) -> Verdict:
        if any(t.malicious for t in self.threats):
            return Verdict.MALICIOUS
        if self.threats:
            return Verdict.MALFORMED
        return Verdict.SKIPPED if self.format == "unknown" else Verdict.CLEAN

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "verdict": self.verdict.value, "pickles": self.pickles,
                "globals": self.globals, "unpacked": self.unpacked, "note": self.note, "threats": [asdict(t) for t in self.threats]}
