"""What a stored run checked, found again: its package (the run records the model's hash, not its folder), its
matrix's cells, and a cell's failing `numerical_parity` report. Every miss is an InputError saying what exists."""
from __future__ import annotations

from pathlib import Path

from modelcompat import settings
from modelcompat.errors import InputError
from modelcompat.matrix.cells import Cell
from modelcompat.matrix.spec import load_matrix
from modelcompat.model.package import MANIFEST_NAME, ModelPackage, load_package
from modelcompat.results.report import Report, Status
from modelcompat.store import RunRecord


def find_package(record: RunRecord, model: Path | None) -> ModelPackage:
    """The run's package: `model` if given (it must hold the run's model), else the demo package, a registered
    version or a `check` package whose model has the run's sha256. The run records the model's hash, not its folder."""
    candidates: list[Path] = [model] if model is not None else []
    if model is None:
        candidates.append(settings.home() / "demo")
        from modelcompat.model_registry.local import LocalRegistry

        try:
            versions = LocalRegistry().model(record.model_name)["versions"]
            candidates += [Path(v["package"]) for v in versions.values() if v.get("sha256") == record.model_sha256]
        except (InputError, OSError, ValueError, KeyError):
            pass  # not registered (or an unreadable registry file): the other places are still searched
        checks = settings.home() / "checks"
        candidates += sorted(checks.iterdir()) if checks.is_dir() else []
    for folder in candidates:
        if model is None and not (folder / MANIFEST_NAME).is_file():
            continue
        package = load_package(folder)  # a --model folder that is no package says what is wrong with it
        if package.primary_sha256 == record.model_sha256:
            return package
        if model is not None:
            raise InputError(f"the package's model (sha256 {package.primary_sha256[:12]}…) is not the one run "
                             f"{record.run_id} checked ({record.model_sha256[:12]}…)", file=folder, field="--model",
                             fix=f"pass the package of {record.model_name} {record.model_version} that run checked")
    raise InputError(f"the package run {record.run_id} checked ({record.model_name} {record.model_version}, sha256 "
                     f"{record.model_sha256[:12]}…) was not found", field="--model",
                     fix="pass its folder with --model DIR")


def run_matrix_path(record: RunRecord, matrix: Path | None) -> Path:
    """The matrix file the run used (`matrix` if given), absolute."""
    path = matrix or (Path(record.matrix_path) if record.matrix_path else None)
    if path is None or not path.is_file():
        raise InputError(f"the matrix run {record.run_id} used ({record.matrix_path or 'not recorded'}) was not found",
                         field="--matrix", fix="pass the matrix the run used with --matrix PATH")
    return path.absolute()


def run_cells(record: RunRecord, matrix: Path | None) -> dict[str, Cell]:
    """The cells of the matrix the run used (`matrix` if given), by id."""
    return {c.id: c for c in load_matrix(run_matrix_path(record, matrix)).cells}


def run_cell(cells: dict[str, Cell], cell_id: str, option: str) -> Cell:
    if cell_id not in cells:
        raise InputError(f"no cell {cell_id!r} in the run's matrix", field=option,
                         fix="one of: " + ", ".join(sorted(cells)))
    return cells[cell_id]


def failing_parity(reports: list[Report], run_id: str, cell_id: str) -> Report:
    """The cell's `numerical_parity` report in the run, which must be a `fail`."""
    parity = {r.cell: r for r in reports if r.validator == "numerical_parity"}
    failing = sorted(c for c, r in parity.items() if r.status == Status.FAIL)
    listed = ", ".join(failing) or "(none)"
    if cell_id not in parity:
        raise InputError(f"run {run_id} has no numerical_parity report for cell {cell_id!r}", field="--cell",
                         fix=f"cells whose parity failed in that run: {listed}")
    report = parity[cell_id]
    if report.status != Status.FAIL:
        raise InputError(f"numerical_parity did not fail on {cell_id} in run {run_id} (it is {report.status.value}): "
                         "there is no divergence to localise", field="--cell",
                         fix=f"cells whose parity failed in that run: {listed}")
    return report


def missing_kernels(reports: list[Report], cell_id: str) -> Report | None:
    """The cell's failing `operator_coverage` report if it names nodes without a kernel (else None)."""
    for r in reports:
        if (r.cell == cell_id and r.validator == "operator_coverage" and r.status == Status.FAIL
                and any(f.code == "operator_coverage.missing_kernel" for f in r.findings)):
            return r
    return None
