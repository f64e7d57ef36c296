"""A run's validator parameters: matrix, then package manifest, then the run's own; bad ones name file and field."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelcompat.errors import ManifestError, MatrixError
from modelcompat.matrix.spec import load_matrix
from modelcompat.planning.params import resolve_params
from modelcompat.settings import matrices_dir
from modelcompat.validators.registry import Registry
from support.pkgvariants import variant


def _matrix(tmp_path: Path, params: dict) -> Path:
    spec = yaml.safe_load((matrices_dir() / "default.yaml").read_text())
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump({**spec, "params": params}))
    return path


def _package(demo_package, tmp_path: Path, params: dict):
    def edit(folder, manifest) -> None:
        manifest["params"] = params
    return variant(demo_package, tmp_path / "pkg", edit)


def test_the_package_overrides_the_matrix_and_the_run_overrides_both(demo_package, tmp_path: Path) -> None:
    matrix = load_matrix(_matrix(tmp_path, {"latency": {"time_budget_s": 20, "min_samples": 80}}))
    package = _package(demo_package, tmp_path, {"latency": {"time_budget_s": 30, "precision": 0.05}})
    registry = Registry.discover()
    assert resolve_params(matrix, package, None, registry) == {
        "latency": {"time_budget_s": 30, "min_samples": 80, "precision": 0.05}}
    run = {"latency": {"time_budget_s": 5}, "not_installed_here": {"x": 1}}
    assert resolve_params(matrix, package, run, registry) == {
        "latency": {"time_budget_s": 5, "min_samples": 80, "precision": 0.05}}


def test_an_unknown_validator_in_the_matrix_names_the_file_and_the_field(demo_package, tmp_path: Path) -> None:
    path = _matrix(tmp_path, {"latncy": {"time_budget_s": 20}})
    with pytest.raises(MatrixError) as caught:
        resolve_params(load_matrix(path), demo_package, None, Registry.discover())
    assert (caught.value.file, caught.value.field) == (str(path), "params.latncy")
    assert "latency" in caught.value.fix


def test_a_value_the_validator_refuses_names_the_manifest_and_the_field(demo_package, tmp_path: Path) -> None:
    package = _package(demo_package, tmp_path, {"latency": {"time_budget_s": -1}})
    matrix = load_matrix(matrices_dir() / "default.yaml")
    with pytest.raises(ManifestError) as caught:
        resolve_params(matrix, package, None, Registry.discover())
    assert caught.value.file.endswith("modelcompat.yaml") and caught.value.field == "params.latency.time_budget_s"
    assert "time_budget_s" in caught.value.fix
