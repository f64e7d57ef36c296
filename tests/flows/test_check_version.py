"""check_version, what the registry flows share: a version the registry does not hold fails before any run.

Its successful path (resolve, run check-matrix as a named subflow, write the verdict back) runs through
each registry flow on a real server: tests/flows/test_on_model_registered.py, test_validate_one.py and
test_nightly_matrix.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.errors import InputError
from modelcompat.flows.check_version import check_version
from modelcompat.model_registry.local import LocalRegistry


@pytest.fixture
def registry(tmp_path: Path, demo_package, monkeypatch: pytest.MonkeyPatch) -> LocalRegistry:
    registry = LocalRegistry(tmp_path / "registry")
    registry.register(demo_package.root)
    monkeypatch.setenv("MODELCOMPAT_REGISTRY", str(registry.root))
    monkeypatch.setenv("MODELCOMPAT_STORE", str(tmp_path / "store"))
    return registry


def test_an_unregistered_model_is_an_input_error_and_nothing_runs(registry: LocalRegistry, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model 'nope' is not registered") as info:
        check_version("nope", "1", matrix=None, trigger="ui")
    assert "demo-mlp" in info.value.fix  # the fix names what is registered
    assert not (tmp_path / "store").exists()


def test_an_unknown_version_names_the_versions_there_are(registry: LocalRegistry, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no version '9'") as info:
        check_version("demo-mlp", "9", matrix=None, trigger="ui")
    assert info.value.fix == "choose one of: 1.0.0"
    assert registry.version("demo-mlp", "1.0.0")["verdict"] is None
    assert not (tmp_path / "store").exists()
