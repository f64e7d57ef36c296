"""One exception hierarchy: every user-facing error names the file, the field and the fix."""
from __future__ import annotations

from pathlib import Path


class ModelcompatError(Exception):
    """Base of every error modelcompat raises on purpose."""


class InputError(ModelcompatError):
    """Invalid user input (flags, matrix, manifest, artifact): nothing was run; CLI exit 2.

    Args:
        message: what is wrong, in one sentence.
        file: the file at fault, when there is one.
        field: the dotted field path inside that file (``backends[2].provider``).
        line: 1-based line in the file, when known.
        fix: what to do about it (valid alternatives where there are some).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.field = field
        self.line = line
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """One human-readable line (plus the fix): ``file:line: field: message. Fix: ...``."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        field = f"{self.field}: " if self.field else ""
        text = f"{where}{field}{self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class MatrixError(InputError):
    """The matrix YAML is malformed or contradictory."""


class ManifestError(InputError):
    """The model package or its manifest is malformed."""


class ArtifactError(InputError):
    """A model file cannot be read as the format it claims."""


class UnsafeArtifactError(ModelcompatError):
    """A file given to modelcompat would run code (or read host files) if loaded: refused unloaded; CLI exit 1.

    Args:
        file: the file scanned.
        threats: one line per threat: what it would run and where (archive member, opcode offset).
        fix: what to do about it.
    """

    def __init__(self, file: str | Path, threats: list[str], fix: str) -> None:
        self.file = str(file)
        self.threats = threats
        self.fix = fix
        lines = [f"{self.file}: malicious: refused without loading it"] + [f"  {t}" for t in threats]
        super().__init__("\n".join([*lines, f"  fix: {fix}"]))


class EnvironmentBuildError(ModelcompatError):
    """A runtime environment could not be provisioned (the cell's checks report `error`)."""


class ProbeError(ModelcompatError):
    """The probe process died, hung or ran out of memory; the check reports `error`.

    Attributes:
        code: finding code such as ``probe.crashed``, ``probe.timeout``, ``probe.out_of_memory``.
        detail: signal name, timeout or the probe's own traceback tail.
    """

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(message)


class ProbeRequestError(ModelcompatError):
    """The probe ran, but the runtime refused the request (e.g. the model does not load).

    This is a finding about the artifact, not a crash: validators turn it into `fail`.
    """

    def __init__(self, op: str, error_type: str, message: str) -> None:
        self.op = op
        self.error_type = error_type
        self.message = message
        super().__init__(f"{op}: {error_type}: {message}")
