"""The `modelcompat` Typer app: the command groups assembled, errors mapped to exit codes, and `main()`.

Exit codes (`modelcompat.results.verdict.ExitCode`): 0 all pass/warn/skipped · 1 a fail (or regression) ·
2 invalid input, nothing run · 3 an error, no fail.
"""
from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from modelcompat import __version__
from modelcompat.cli import (
    audit,
    automations,
    baseline,
    check,
    localise,
    matrix,
    package,
    precommit,
    range_cmd,
    registry,
    remediate,
    report,
    run,
    sbom,
    scan,
    serve,
    store,
    validators,
)
from modelcompat.cli.console import console, report_error
from modelcompat.errors import ModelcompatError


class _ErrorMappingGroup(TyperGroup):
    """Every command runs inside this group's `invoke`: an error modelcompat raises on purpose becomes
    one `error:` message and its exit code here, for the console script and for in-process callers alike."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelcompatError as exc:
            raise typer.Exit(report_error(exc)) from None


app = typer.Typer(cls=_ErrorMappingGroup, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Catch incompatibilities between ML model artifacts and the serving runtimes they will run on.")


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        console.print(f"modelcompat {__version__}")
        raise typer.Exit(0)


# Registration order is the order `--help` lists them in: commands first, then the groups.
app.command()(run.run)
app.command()(run.plan)
app.command()(check.check)
app.command("pre-commit")(precommit.pre_commit)
app.command("range")(range_cmd.range_)
app.command("validators")(validators.list_validators)
app.command()(package.package)
app.command()(scan.scan)
app.command()(package.demo)
app.command()(report.history)
app.command()(report.report)
app.command()(localise.localise)
app.command()(remediate.remediate)
app.command()(audit.audit)
app.command()(sbom.sbom)
app.command()(serve.serve)
app.command()(serve.server)
app.add_typer(matrix.matrix_app, name="matrix")
app.add_typer(registry.registry_app, name="registry")
app.add_typer(baseline.baseline_app, name="baseline")
app.add_typer(store.store_app, name="store")
app.add_typer(serve.webhook_app, name="webhook")
app.add_typer(automations.automations_app, name="automations")


def main() -> None:
    """Console-script entry (`modelcompat`, `python -m modelcompat.cli`)."""
    app()
