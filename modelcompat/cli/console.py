"""Where the CLI writes: results to stdout, errors to stderr as one `error:` message with its exit code.

Every error the CLI reports goes through `report_error`, so each error class has one exit code and no
command prints a traceback.
"""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from modelcompat.errors import InputError, ModelcompatError, UnsafeArtifactError
from modelcompat.results.verdict import ExitCode
from modelcompat.store import RunNotFoundError

console = Console()
err_console = Console(stderr=True)


def error_message(exc: ModelcompatError) -> str:
    """The text after `error:`: an InputError's file, field, message and fix; otherwise the message."""
    return exc.render() if isinstance(exc, InputError) else str(exc)


def exit_code_for(exc: ModelcompatError) -> ExitCode:
    """Bad input and unknown runs: 2 (nothing ran); a malicious file: 1 (a fail, found before anything loaded it);
    any other failure of the store or of modelcompat: 3."""
    if isinstance(exc, (InputError, RunNotFoundError)):
        return ExitCode.INPUT
    if isinstance(exc, UnsafeArtifactError):
        return ExitCode.FAIL
    return ExitCode.ERROR  # StoreError (unreadable file, newer schema, …) and every other ModelcompatError


def print_error(message: str) -> None:
    """`error: message` on stderr, one line per line of the message whatever the terminal's width."""
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)


def report_error(exc: ModelcompatError) -> ExitCode:
    """Print ``exc`` as one error message; the exit code it maps to."""
    print_error(error_message(exc))
    return exit_code_for(exc)
