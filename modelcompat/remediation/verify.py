"""Verify one candidate: build its package (the original payloads and references kept), re-run the original run's
cells on it the way `modelcompat run` does, and judge: the failing cells must now pass and no other cell may get
worse (loadability, parity against the ORIGINAL reference, anything).

The re-run goes through `orchestration.matrix_run` (prepare, the harness's `check_cell` per cell, finish) into a
scratch store beside the candidate, so the user's store and the model's history hold only real runs.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelcompat import __version__
from modelcompat.execution.harness import check_cell
from modelcompat.files.atomic import write_text
from modelcompat.model.build import build_package
from modelcompat.model.package import ModelPackage, load_package, write_manifest
from modelcompat.model.provenance import ConversionStep, Provenance
from modelcompat.orchestration.matrix_run import FinishedRun, cell_failed_reports, finish_run, keep_cell, prepare_run
from modelcompat.orchestration.resources import offered_resources
from modelcompat.remediation.edits import EditError
from modelcompat.remediation.transforms import Candidate
from modelcompat.results.report import Report, Status

BAD = (Status.FAIL, Status.ERROR)


@dataclass
class Verdict:
    """What verifying a candidate showed. `verified` only when every target cell passes and nothing got worse."""

    candidate: Candidate
    verified: bool = False
    reasons: list[str] = field(default_factory=list)  # why it was rejected (empty when verified)
    now_passing: list[str] = field(default_factory=list)  # target cells that pass on the candidate
    still_failing: list[str] = field(default_factory=list)
    kept_passing: list[str] = field(default_factory=list)  # cells that passed before and still do
    broken: list[str] = field(default_factory=list)  # cells that passed before and do not now
    parity: dict[str, dict[str, float]] = field(default_factory=dict)  # cell -> numerical_parity metrics
    package: Path | None = None
    matrix: Path | None = None
    run_id: str | None = None  # the verification run, in <package>/../verification-store


def rerun(*, matrix: Path, model: Path, validators: list[str], cells: Iterable[str], store: str,
          params: dict[str, dict[str, Any]] | None = None) -> FinishedRun:
    """Check `model` on exactly `cells` of `matrix` as `modelcompat run` does (plan, the harness per cell, compare,
    append to `store`), every check run afresh; cells run one after another in this process, each probe in its own."""
    run = prepare_run(matrix=str(matrix), model=str(model), validators=validators, cells=None, store=store,
                      params=params, force=True, force_validators=None, offered=offered_resources(None))
    wanted = set(cells)
    run.cells = [c for c in run.cells if c.id in wanted]
    run.plan = [p for p in run.plan if p.cell.id in wanted]
    run.jobs = [j for j in run.jobs if j.cell.id in wanted]
    run.done = {k: v for k, v in run.done.items() if k[0] in wanted}
    for job in run.jobs:
        try:
            reports = check_cell(job, run.registry)
        except Exception as exc:  # noqa: BLE001  a cell that breaks is an error report, as in a run
            reports = cell_failed_reports(run, job, exc)
        keep_cell(run, job, reports)
    return finish_run(run, trigger="cli", flow_run_id=None)


def candidate_matrix(matrix: Path, candidate: Candidate, backends: set[str], dest: Path) -> Path:
    """The run's matrix with the candidate's backend options set on `backends` (a copy; the original untouched)."""
    if not candidate.backend_options:
        return matrix
    data = yaml.safe_load(matrix.read_text())
    for backend in data.get("backends") or []:
        if backend.get("id") in backends:
            backend.update(candidate.backend_options)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_text(dest, yaml.safe_dump(data, sort_keys=False))
    return dest


def build_candidate(original: ModelPackage, candidate: Candidate, out: Path, scratch: Path) -> ModelPackage:
    """The candidate's package at `out` through the package builder (hashes, contract, manifest), with the
    original's payloads, references, tolerances, requirements, budgets, semantics, validator params and provenance
    (the rewrite appended to its lineage).

    Raises:
        EditError: the rewrite failed (the converter's reason).
    """
    manifest = original.manifest
    new_onnx = candidate.make(scratch / "model")
    files = []
    for artifact in manifest.artifacts:
        replaced = artifact.format == "onnx" and new_onnx is not None
        files.append(new_onnx if replaced else original.resolve(artifact.path))
    sets = manifest.all_payloads()
    payloads = [original.resolve(s.payload) for s in sets]
    references = [original.resolve(s.reference) for s in sets if s.reference]
    if len(references) != len(sets):
        raise EditError("the original package has a payload without reference outputs: parity against the "
                        "original could not be checked (add --reference when packaging)")
    semantics = {t.name: t.semantics for t in manifest.contract.outputs if t.semantics}
    package = build_package(files, payloads, out, name=manifest.name, version=f"{manifest.version}+{candidate.id}",
                            reference=references, tolerances=manifest.tolerances,
                            requirements=list(manifest.requirements), budgets=manifest.budgets, semantics=semantics)
    carried = {"params": manifest.params, "provenance": _with_step(manifest.provenance, candidate, new_onnx,
                                                                       package)}
    if any(carried.values()):
        write_manifest(package.root, package.manifest.model_copy(update=carried))
        package = load_package(package.root)
    return package


def _with_step(provenance: Provenance | None, candidate: Candidate, new_onnx: Path | None,
               package: ModelPackage) -> Provenance | None:
    """The original's provenance, plus the rewrite as the last lineage step when the candidate rewrote the model
    (backend options alone leave the artifact, and so its lineage, as it was)."""
    if new_onnx is None:
        return provenance
    onnx = package.artifact("onnx")
    step = ConversionStep(step=candidate.transform, tool="modelcompat remediate", version=__version__,
                          artifact=onnx.path if onnx else None, note=candidate.label or None)
    base = provenance or Provenance()
    return base.model_copy(update={"lineage": [*base.lineage, step]})


def judge(verdict: Verdict, original: dict[tuple[str, str], Report], targets: set[str],
          new: list[Report]) -> Verdict:
    """Fill `verdict` from the re-run: per cell, what the candidate fixed, kept and broke."""
    by_cell: dict[str, list[Report]] = {}
    for report in new:
        by_cell.setdefault(report.cell, []).append(report)
        if report.validator == "numerical_parity" and report.metrics:
            verdict.parity[report.cell] = dict(report.metrics)
    before: dict[str, list[Report]] = {}
    for (cell, _), report in original.items():
        before.setdefault(cell, []).append(report)
    broken_reasons, failing_reasons = [], []
    for cell in sorted(before):
        bad_now = [r for r in by_cell.get(cell, []) if r.status in BAD]
        if cell in targets:
            (verdict.still_failing if bad_now else verdict.now_passing).append(cell)
            failing_reasons += [f"{cell} still {r.status.value}s: {_first(r)}" for r in bad_now]
            continue
        was_bad = {r.validator for r in before[cell] if r.status in BAD}
        newly_bad = [r for r in bad_now if r.validator not in was_bad]
        if newly_bad:
            verdict.broken.append(cell)
            broken_reasons += [f"{cell} passed before, now {r.status.value}s: {_first(r)}" for r in newly_bad]
        elif not was_bad:
            verdict.kept_passing.append(cell)
    verdict.reasons = broken_reasons + failing_reasons
    verdict.verified = not verdict.reasons and bool(verdict.now_passing)
    return verdict


def _first(report: Report) -> str:
    bad = [f for f in report.findings if f.severity.value == "error"] or list(report.findings)
    if not bad:
        return report.validator
    f = bad[0]
    return f"{f.code}: {f.message}"[:400]


def verify(original: ModelPackage, candidate: Candidate, *, matrix: Path, validators: list[str],
           reports: dict[tuple[str, str], Report], targets: set[str], target_backends: set[str],
           workdir: Path) -> Verdict:
    """Build, re-run and judge one candidate under `workdir/<candidate id>/` (`package/`, `matrix.yaml`,
    `verification-store/`). A rewrite or build that fails is a rejection with its reason, never an exception."""
    verdict = Verdict(candidate)
    folder = workdir / candidate.id
    shutil.rmtree(folder, ignore_errors=True)
    try:
        package = build_candidate(original, candidate, folder / "package", folder / "scratch")
    except EditError as exc:
        verdict.reasons = [str(exc)]
        return verdict
    except Exception as exc:  # noqa: BLE001  e.g. the host runtime refuses the rewritten model
        verdict.reasons = [f"building the package failed: {type(exc).__name__}: {exc}"[:600]]
        return verdict
    finally:
        shutil.rmtree(folder / "scratch", ignore_errors=True)
    verdict.package = package.root
    verdict.matrix = candidate_matrix(matrix, candidate, target_backends, folder / "matrix.yaml")
    cells = {cell for cell, _ in reports}
    finished = rerun(matrix=verdict.matrix, model=package.root, validators=validators, cells=cells,
                     store=str(folder / "verification-store"))
    verdict.run_id = finished.record.run_id
    return judge(verdict, reports, targets, finished.reports)
