"""The distribution's layout: folders mapped into the namespace, no bare top-level names."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("bare", ["validators", "flows", "matrices"])
def test_bare_folder_names_are_not_importable(bare: str, tmp_path) -> None:
    # Run from a neutral directory: the repo root on sys.path would hide the packaging mistake.
    proc = subprocess.run([sys.executable, "-c", f"import {bare}"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ModuleNotFoundError" in proc.stderr


def test_folders_import_under_the_modelcompat_namespace(tmp_path) -> None:
    code = "import modelcompat.validators.base, modelcompat.flows.check_matrix; print(modelcompat.validators.base.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("validators/base.py")


def test_console_script_is_installed() -> None:
    proc = subprocess.run([sys.executable, "-m", "modelcompat.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("modelcompat ")


def test_every_package_folder_is_in_the_distribution() -> None:
    """An editable install imports any folder under modelcompat/; a wheel ships only the listed packages."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    agent = root / "modelcompat" / "probe" / "agent"  # shipped as files (package-data), run by path, never imported
    folders = {".".join(init.parent.relative_to(root).parts) for init in (root / "modelcompat").rglob("__init__.py")
               if agent not in init.parents}
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
