"""Run validators on one cell through the real harness, and read their finding codes."""
from __future__ import annotations

from pathlib import Path

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.matrix.cells import Cell
from modelcompat.model.package import ModelPackage
from modelcompat.results.report import Report
from support.pkgvariants import rehash

ALL = ("integrity", "loadability", "io_contract", "numerical_parity")


def run(package: ModelPackage, cell: Cell, validators=ALL, params=None) -> dict[str, Report]:
    job = CellJob(cell=cell, package_root=str(package.root), validators=tuple(validators), params=params or {},
                  run_id="test")
    return {r.validator: r for r in check_cell(job)}


def codes(report: Report) -> set[str]:
    return {f.code for f in report.findings}


def garbage_onnx(folder: Path, manifest: dict) -> None:
    (folder / "model.onnx").write_bytes(b"this is not a protobuf model" * 10)
    rehash(folder, manifest)
