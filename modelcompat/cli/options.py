"""Options several commands share, defined once, and the small parsers and openers behind them."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelcompat import settings

if TYPE_CHECKING:
    from modelcompat.store import Store

# The selection options `run` and `plan` share (plan takes the same ones, so it plans exactly that run).
MatrixOption = Annotated[Path | None, typer.Option("--matrix", help="Matrix YAML (default: matrices/default.yaml or $MODELCOMPAT_MATRIX).")]
ModelOption = Annotated[Path | None, typer.Option("--model", help="Model package folder (default: the built-in demo package, built once).")]
ValidatorsOption = Annotated[str | None, typer.Option("--validators", help="Comma-separated validator names (default: all installed).")]
CellsOption = Annotated[str | None, typer.Option("--cells", help="Glob(s) matched against cell ids runtime/hardware/backend, comma-separated.")]
ForceValidatorsOption = Annotated[str | None, typer.Option("--force-validators", help="Re-run these validators (comma-separated) even if cached.")]
StoreOption = Annotated[str | None, typer.Option("--store", help="Store folder or URI (default: $MODELCOMPAT_STORE or .modelcompat/store).")]


def split_csv(value: str | None) -> list[str] | None:
    """`a, b,,c` -> ["a", "b", "c"]; None or empty -> None (meaning: all)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def open_store(uri: str | None) -> Store:
    """The store at ``uri``, else $MODELCOMPAT_STORE, else the home's store."""
    from modelcompat.store import Store

    return Store(uri or settings.store_uri())
