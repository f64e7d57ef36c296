"""Shared options: defined once and the same on every command that takes them; the CSV parser and the store opener."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from modelcompat.cli.app import app
from modelcompat.cli.options import open_store, split_csv


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group
            found.update(_commands(command, f"{prefix}{name} "))
        else:
            found[prefix + name] = command
    return found


def test_every_store_option_is_the_shared_one() -> None:
    commands = _commands(typer.main.get_command(app))
    with_store = {name: next(p for p in c.params if p.name == "store") for name, c in commands.items()
                  if any(p.name == "store" for p in c.params)}
    assert set(with_store) == {"run", "plan", "check", "history", "report", "baseline promote", "baseline show",
                               "store compact", "range", "localise", "remediate", "audit", "sbom",
                               "registry alias set"}
    assert {(tuple(p.opts), p.help) for p in with_store.values()} == {
        (("--store",), "Store folder or URI (default: $MODELCOMPAT_STORE or .modelcompat/store).")}


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("a", ["a"]), (" a, b ,,c ", ["a", "b", "c"]), (",", []),
])
def test_split_csv(value, expected) -> None:
    assert split_csv(value) == expected


def test_open_store_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_store(str(tmp_path / "a")).uri.endswith("a")
    monkeypatch.setenv("MODELCOMPAT_STORE", str(tmp_path / "env-store"))
    assert open_store(None).uri.endswith("env-store")
