"""The assembled app: entry points, the command list, and every ModelcompatError mapped to one message and its code."""
from __future__ import annotations

import tomllib
from importlib import import_module

import pytest
import typer
from typer.testing import CliRunner

from modelcompat import __version__
from modelcompat.cli.app import _ErrorMappingGroup, app, main
from modelcompat.errors import InputError, ModelcompatError
from modelcompat.settings import REPO_ROOT
from modelcompat.store import RunNotFoundError, StoreError

COMMANDS = ["run", "plan", "check", "pre-commit", "range", "validators", "package", "scan", "demo", "history", "report",
            "localise", "remediate", "audit", "sbom", "serve", "server"]
GROUPS = ["matrix", "registry", "baseline", "store", "webhook", "automations"]


def test_the_console_script_and_python_m_reach_main(cli) -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["modelcompat"].split(":")
    assert getattr(import_module(module), func) is main
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"modelcompat {__version__}"


def test_help_lists_the_commands_then_the_groups_in_order(cli) -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    listed = [line.split()[0] for line in proc.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == COMMANDS + GROUPS
    bare = cli()  # no arguments: the same help, as a usage error (click's exit 2, as before the split)
    assert bare.returncode == 2 and bare.stderr == proc.stdout


def _app_raising(exc: Exception) -> typer.Typer:
    """A one-command app built like the real one (same group class), whose command raises ``exc``."""
    probe = typer.Typer(cls=_ErrorMappingGroup, add_completion=False)

    @probe.command()
    def boom() -> None:
        raise exc

    @probe.command()
    def fine() -> None:
        pass
    return probe


@pytest.mark.parametrize(("exc", "code", "message"), [
    (InputError("bad flag", field="--x", fix="use --y"), 2, "error: --x: bad flag\n  fix: use --y"),
    (RunNotFoundError("/s", "r9", ["r1", "r2"]), 2,
     "error: no committed run 'r9' in the store /s; pick one of the recent runs: r1, r2"),
    (StoreError("the runs file /s/runs/x.parquet is unreadable"), 3,
     "error: the runs file /s/runs/x.parquet is unreadable"),
    (ModelcompatError("the environment could not be built"), 3, "error: the environment could not be built"),
])
def test_errors_become_one_message_and_their_exit_code(exc, code, message) -> None:
    result = CliRunner().invoke(_app_raising(exc), ["boom"])
    assert result.exit_code == code
    assert result.stderr.strip() == message
    assert not isinstance(result.exception, ModelcompatError)  # handled, not escaped


def test_an_unknown_run_through_the_real_app_is_exit_2(tmp_path) -> None:
    result = CliRunner().invoke(app, ["report", "r-missing", "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and "no committed run 'r-missing'" in result.stderr
