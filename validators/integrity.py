"""`integrity`: the artifact's bytes, and those of every external-data file it reads, hash to the manifest's sha256."""
from __future__ import annotations

import time

from modelcompat.errors import ManifestError
from modelcompat.model.hashing import sha256_file
from modelcompat.model.package import DataFile
from modelcompat.validators import Finding, Outcome, Params, Severity, ValidationContext, Validator

_RESTORE = ("restore the registered file, or re-package the model (`modelcompat package`) if the change is "
            "intended")


class Integrity(Validator):
    name = "integrity"
    version = "1"
    description = ("The artifact the backend consumes, and every external-data file it reads, match the sha256 "
                   "declared in the manifest.")
    # "artifact" covers the bytes and the declared sha256 of the artifact this backend consumes and of its data files.
    inputs = ("artifact",)
    needs_probe = False

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        path = ctx.artifact_path
        t0 = time.perf_counter()
        actual = sha256_file(path)
        findings = []
        if actual != ctx.artifact.sha256:
            findings.append(Finding(
                code="integrity.sha256_mismatch", severity=Severity.ERROR, step="hash",
                message=f"{ctx.artifact.path} does not match the sha256 in {ctx.package.manifest_path.name}",
                observed=actual, expected=ctx.artifact.sha256,
                remediation="the artifact changed after packaging or was corrupted in transit: " + _RESTORE,
            ))
        data_bytes = 0
        for data in ctx.artifact.data_files or []:
            finding, size = self._check_data_file(ctx, data)
            data_bytes += size
            if finding is not None:
                findings.append(finding)
        elapsed = time.perf_counter() - t0
        metrics = {"artifact_size_bytes": float(path.stat().st_size), "hash_time_ms": elapsed * 1000}
        if ctx.artifact.data_files:
            metrics.update(data_files=float(len(ctx.artifact.data_files)), data_size_bytes=float(data_bytes))
        return Outcome(metrics=metrics, findings=findings)

    @staticmethod
    def _check_data_file(ctx: ValidationContext, data: DataFile) -> tuple[Finding | None, int]:
        """A finding when the data file is missing, outside the package, truncated or modified; and its size."""
        manifest = ctx.package.manifest_path.name
        try:
            path = ctx.package.resolve(data.path)
        except ManifestError:
            return Finding(
                code="integrity.data_file_outside", severity=Severity.ERROR, step="hash",
                message=f"data file {data.path} of {ctx.artifact.path} resolves outside the package folder "
                        "(a symlink?)", observed=str((ctx.package.root / data.path).resolve()),
                expected=f"a regular file inside {ctx.package.root}",
                remediation="replace the link by the file itself: " + _RESTORE), 0
        if not path.is_file():
            return Finding(
                code="integrity.data_file_missing", severity=Severity.ERROR, step="hash",
                message=f"data file {data.path} of {ctx.artifact.path} is missing ({manifest} declares it: "
                        f"{data.size} bytes)", observed="missing", expected=f"{data.size} bytes, sha256 {data.sha256}",
                remediation=f"copy {data.path} next to {ctx.artifact.path} (the model reads its weights from it): "
                            + _RESTORE), 0
        size = path.stat().st_size
        if size != data.size:
            return Finding(
                code="integrity.data_file_mismatch", severity=Severity.ERROR, step="hash",
                message=f"data file {data.path} of {ctx.artifact.path} is {size} bytes, {manifest} declares "
                        f"{data.size}" + (" (truncated)" if size < data.size else ""),
                observed=f"{size} bytes", expected=f"{data.size} bytes",
                remediation="the copy did not finish or the file was replaced: " + _RESTORE), size
        actual = sha256_file(path)
        if actual != data.sha256:
            return Finding(
                code="integrity.data_file_mismatch", severity=Severity.ERROR, step="hash",
                message=f"data file {data.path} of {ctx.artifact.path} does not match the sha256 in {manifest}",
                observed=actual, expected=data.sha256,
                remediation="the weights changed after packaging or were corrupted in transit: " + _RESTORE), size
        return None, size
