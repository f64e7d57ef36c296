"""`modelcompat registry register|list|alias set` on a local folder registry (no Prefect server: no event)."""
from __future__ import annotations

from pathlib import Path

import pytest


def test_register_list_and_alias(invoke, demo_package, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    registry = str(tmp_path / "registry")
    code, out, _ = invoke("registry", "register", str(demo_package.root), "--registry", registry)
    assert code == 0
    assert out.startswith(f"registered {demo_package.manifest.name} {demo_package.manifest.version} (")
    assert "PREFECT_API_URL is not set: no event emitted" in out
    # The promotion gate: a version never checked is refused (tests/cli/test_audit.py); once it passed, it moves.
    from modelcompat.model_registry.local import LocalRegistry

    LocalRegistry(registry).record_verdict(demo_package.manifest.name, demo_package.manifest.version,
                                           verdict="pass", run_id="r-1")
    code, out, _ = invoke("registry", "alias", "set", demo_package.manifest.name, "production",
                          demo_package.manifest.version, "--registry", registry, "--store", str(tmp_path / "store"))
    assert code == 0 and out.strip() == (f"{demo_package.manifest.name}@production -> "
                                         f"{demo_package.manifest.version} (verdict pass)")
    code, out, _ = invoke("registry", "list", "--registry", registry)
    assert code == 0
    # A table row, or a record per model when the package path makes the table wider than the terminal.
    listing = " ".join(out.split())
    assert f"{demo_package.manifest.name} " in listing and demo_package.manifest.version in listing
    assert "production" in listing


def test_an_mlflow_registry_is_refused_with_exit_2(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCOMPAT_REGISTRY", "mlflow+http://127.0.0.1:5000")
    code, _, err = invoke("registry", "list")
    assert code == 2
    assert "MODELCOMPAT_REGISTRY points at MLflow" in err and "--registry DIR" in err


def test_an_alias_to_an_unknown_version_is_exit_2(invoke, tmp_path: Path) -> None:
    code, _, err = invoke("registry", "alias", "set", "nobody", "production", "9", "--registry", str(tmp_path / "r"))
    assert code == 2 and "nobody" in err and "Traceback" not in err
