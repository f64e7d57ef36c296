"""What validators return (Outcome) and what is stored (Report): status, metrics, findings, evidence."""
from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Status(str, Enum):
    """`fail`: the check ran and the artifact is incompatible. `error`: the check could not run."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"


class Severity(str, Enum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class Finding(BaseModel):
    """One thing a validator noticed, with what to do about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="`<validator>.<reason>`, e.g. `integrity.sha256_mismatch`.")
    severity: Severity
    message: str
    observed: str | None = None
    expected: str | None = None
    remediation: str | None = None
    step: str | None = Field(None, description="The step that failed, e.g. `load`, `run`, `compare`.")


class Outcome(BaseModel):
    """What a validator's `validate` returns: metrics and findings; status derives from them."""

    model_config = ConfigDict(extra="forbid")

    metrics: dict[str, float] = Field(default_factory=dict)
    findings: list[Finding] = Field(default_factory=list)
    runtime_version: str | None = Field(None, description="e.g. `onnxruntime 1.16.3`, when the check learned it.")

    def status(self) -> Status:
        """fail on any error finding, warn on any warn finding, else pass."""
        severities = {f.severity for f in self.findings}
        if Severity.ERROR in severities:
            return Status.FAIL
        if Severity.WARN in severities:
            return Status.WARN
        return Status.PASS


class Evidence(BaseModel):
    """What the verdict was reached on: enough to reproduce it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact_path: str | None = None
    artifact_sha256: str | None = None
    runtime_version: str | None = None
    environment_fingerprint: str | None = None
    environment: dict[str, str] = Field(default_factory=dict, description="python, platform, key package versions.")
    worker: str | None = Field(None, description="hostname:pid of the process (the Dask worker) that ran the check.")


class Report(BaseModel):
    """The stored result of one (cell, validator) in one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    cell: str
    runtime: str
    runtime_version: str | None
    hardware: str
    backend: str
    validator: str
    validator_version: str
    status: Status
    cached: bool = False
    cached_from: str | None = None
    duration_s: float = 0.0
    metrics: dict[str, float] = Field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    evidence: Evidence = Field(default_factory=Evidence)
    cache_key: str | None = None
    cache_inputs: dict[str, str] = Field(default_factory=dict, description="Input name -> what the key hashed.")
    started_at: str | None = None

