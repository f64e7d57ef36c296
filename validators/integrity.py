"""`integrity`: the artifact's bytes hash to the sha256 the manifest declares."""
from __future__ import annotations

import time

from modelcompat.model.hashing import sha256_file
from modelcompat.validators import Finding, Outcome, Params, Severity, ValidationContext, Validator


class Integrity(Validator):
    name = "integrity"
    version = "1"
    description = "The artifact the backend consumes matches the sha256 declared in the manifest."
    # "artifact" covers both the bytes and the declared sha256 of the artifact this backend consumes.
    inputs = ("artifact",)
    needs_probe = False

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        path = ctx.artifact_path
        t0 = time.perf_counter()
        actual = sha256_file(path)
        elapsed = time.perf_counter() - t0
        size = path.stat().st_size
        metrics = {"artifact_size_bytes": float(size), "hash_time_ms": elapsed * 1000}
        findings = []
        if actual != ctx.artifact.sha256:
            findings.append(Finding(
                code="integrity.sha256_mismatch", severity=Severity.ERROR, step="hash",
                message=f"{ctx.artifact.path} does not match the sha256 in {ctx.package.manifest_path.name}",
                observed=actual, expected=ctx.artifact.sha256,
                remediation="the artifact changed after packaging or was corrupted in transit: restore the "
                            "registered file, or re-package it (`modelcompat package`) if the change is intended",
            ))
        return Outcome(metrics=metrics, findings=findings)
