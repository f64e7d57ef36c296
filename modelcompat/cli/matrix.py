"""`modelcompat matrix show`: the cells a matrix expands to."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelcompat.cli.console import console

matrix_app = typer.Typer(no_args_is_help=True, help="Inspect compatibility matrices.")


@matrix_app.command("show")
def matrix_show(
    path: Annotated[Path, typer.Argument(help="Matrix YAML file.")],
    cells: Annotated[str | None, typer.Option(help="Only cells matching these glob(s).")] = None,
) -> None:
    """Print the cells a matrix expands to."""
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.render.tables import cells_table

    loaded = load_matrix(path)
    console.print(cells_table(loaded.name, loaded.select(cells)))
