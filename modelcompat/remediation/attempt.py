"""The remediation of one stored run: find its failing cells and its package, try each candidate transform,
verify it on every cell of the run, keep the verified ones in the output folder and record them.

Bad input (unknown run, no failing cell, an output folder that cannot be written, a package or matrix that cannot
be found) is an InputError before anything is tried.
"""
from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelcompat.errors import InputError
from modelcompat.execution.run_inputs import find_package, run_matrix_path
from modelcompat.matrix.spec import load_matrix
from modelcompat.model.package import ModelPackage
from modelcompat.remediation.records import fix_text, publish_fixes, write_report
from modelcompat.remediation.transforms import TRANSFORMS, Failing, failing_reports, propose
from modelcompat.remediation.verify import Verdict, verify
from modelcompat.results.report import Report
from modelcompat.store import Store

TRIED = ".tried"  # candidates being verified; a rejected one is deleted (never offered)


@dataclass
class Remediation:
    """What `remediate` did: the targets, every candidate's verdict, and where the report went."""

    run_id: str
    package: ModelPackage
    targets: list[str]
    verdicts: list[Verdict] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None
    store_record: str | None = None

    @property
    def verified(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verified]


def check_out_dir(out: Path) -> Path:
    """`out` created if needed and writable; an InputError naming `--out` otherwise."""
    out = Path(out).absolute()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write to the output folder: {exc.strerror or exc}", file=out, field="--out",
                         fix="choose a folder you can write to") from None
    return out


def _command(run_id: str, out: Path, cells: str | None, transform: str, store: str | None) -> str:
    parts = ["modelcompat", "remediate", run_id, "--out", str(out), "--transforms", transform]
    parts += ["--cells", cells] if cells else []
    parts += ["--store", store] if store else []
    return shlex.join(parts)


def remediate(store: Store, run_id: str, out: Path, *, cells: str | None = None, model: Path | None = None,
              matrix: Path | None = None, transforms: list[str] | None = None, store_arg: str | None = None,
              ) -> Remediation:
    """Try every candidate for `run_id`'s failing cells (those matching `cells`), verify each, keep the verified.

    Raises:
        RunNotFoundError: no such run (exit 2). InputError: no failing cell, unknown transform, `out` not writable,
            package or matrix not found.
    """
    unknown = [t for t in transforms or [] if t not in TRANSFORMS]
    if unknown:
        raise InputError(f"unknown transform(s) {', '.join(unknown)}", field="--transforms",
                         fix="choose from: " + ", ".join(TRANSFORMS))
    record = store.require_run(run_id)
    reports = store.load_reports(run_id)
    globs = [g.strip() for g in (cells or "").split(",") if g.strip()]
    failing = [r for r in failing_reports(reports) if not globs or any(fnmatch.fnmatchcase(r.cell, g) for g in globs)]
    if not failing:
        where = f" matching {cells!r}" if cells else ""
        failed = sorted({r.cell for r in failing_reports(reports)})
        raise InputError(f"run {run_id} has no failing cell{where}: nothing to remediate",
                         field="--cells" if cells else "RUN_ID",
                         fix=f"failing cells of the run: {', '.join(failed)}" if failed else
                         "remediate a run whose verdict is fail (`modelcompat report RUN_ID` shows it)")
    package = find_package(record, model)
    matrix_path = run_matrix_path(record, matrix)
    out = check_out_dir(out)  # created only once the rest of the input holds
    cells_by_id = {c.id: c for c in load_matrix(matrix_path).select(None)}
    targets = sorted({r.cell for r in failing})
    missing = [c for c in {r.cell for r in reports} if c not in cells_by_id]
    if missing:
        raise InputError(f"the matrix no longer has the run's cells {', '.join(sorted(missing))}", file=matrix_path,
                         fix="pass the matrix the run used with --matrix PATH")
    original: dict[tuple[str, str], Report] = {(r.cell, r.validator): r for r in reports}
    validators = list(dict.fromkeys(r.validator for r in reports))
    result = Remediation(run_id=run_id, package=package, targets=targets)
    target_backends = {cells_by_id[c].backend.id for c in targets}
    work = out / TRIED
    done: set[str] = set()
    for candidate in propose(Failing(package, failing, {c: cells_by_id[c] for c in targets}), transforms):
        if candidate.transform in done:
            continue  # one verified fix per transform: its other targets would say the same
        verdict = verify(package, candidate, matrix=matrix_path, validators=validators, reports=original,
                         targets=set(targets), target_backends=target_backends, workdir=work)
        if verdict.verified:
            done.add(candidate.transform)
            final = out / candidate.id
            shutil.rmtree(final, ignore_errors=True)
            os.replace(work / candidate.id, final)
            verdict.package = final / "package"
            verdict.matrix = final / "matrix.yaml" if candidate.backend_options else verdict.matrix
        else:
            shutil.rmtree(work / candidate.id, ignore_errors=True)
            verdict.package = None
        result.verdicts.append(verdict)
    shutil.rmtree(work, ignore_errors=True)

    result.document = _document(result, record, out, cells, store_arg, failing)
    result.report = write_report(out, result.document)[0]
    fixes = [{"cell": r.cell, "code": f.code, "fix": result.document["fix"]}
             for r in failing for f in r.findings if result.document.get("fix")]
    result.store_record = publish_fixes(store, run_id, fixes)
    return result


def _document(result: Remediation, record: Any, out: Path, cells: str | None, store_arg: str | None,
              failing: list[Report]) -> dict[str, Any]:
    candidates = []
    for v in result.verdicts:
        candidates.append({
            "id": v.candidate.id, "transform": v.candidate.transform, "label": v.candidate.label,
            "verified": v.verified, "reasons": v.reasons, "code": v.candidate.code,
            "backend_options": v.candidate.backend_options,
            "command": _command(result.run_id, out, cells, v.candidate.transform, store_arg),
            "package": str(v.package) if v.package else None,
            "matrix": str(v.matrix) if v.verified and v.candidate.backend_options else None,
            "now_passing": v.now_passing, "still_failing": v.still_failing, "kept_passing": v.kept_passing,
            "broken": v.broken, "parity": v.parity, "verification_run_id": v.run_id,
        })
    first = next((c for c in candidates if c["verified"]), None)
    fix = fix_text(first["command"], first["package"], result.targets) if first else None
    return {
        "run_id": result.run_id,
        "model": {"name": record.model_name, "version": record.model_version, "sha256": record.model_sha256,
                  "package": str(result.package.root)},
        "targets": result.targets,
        "findings": [{"cell": r.cell, "validator": r.validator, "code": f.code, "message": f.message, "fix": fix}
                     for r in failing for f in r.findings],
        "candidates": candidates,
        "fix": fix,
    }
