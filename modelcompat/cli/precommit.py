"""`modelcompat pre-commit FILE...`: `modelcompat check` on each model file a commit touches, for the pre-commit hook
(.pre-commit-hooks.yaml). Each file is checked as a model of its own, in its own process, so one bad file cannot
hide another's verdict; the exit code is the worst of them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from modelcompat.cli.console import console
from modelcompat.cli.options import CellsOption, MatrixOption, ValidatorsOption

# Which exit code wins when files disagree: a bad input (nothing checked) first, then an incompatibility, then a
# check that could not run (the exit codes of `run`/`check`).
_WORST_FIRST = (2, 1, 3)


def worst(codes: list[int]) -> int:
    """The exit code of several checks: 2 over 1 over 3 over 0 (any other non-zero code counts as 2)."""
    codes = [c if c in (0, *_WORST_FIRST) else 2 for c in codes]
    return next((c for c in _WORST_FIRST if c in codes), 0)


def pre_commit(
    files: Annotated[list[Path], typer.Argument(help="Model files (pre-commit passes the staged ones): ONNX, .pt2, "
                                                "TorchScript.")],
    matrix: MatrixOption = None,
    cells: CellsOption = None,
    validators: ValidatorsOption = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Local Dask worker processes per check.")] = None,
) -> None:
    """Run `modelcompat check` on each model file, one model per file (the pre-commit hook `modelcompat-check`).
    Exits with the worst code: 2 a file is not a model it can check (a pickled torch.save checkpoint included),
    1 a file fails a check, 3 a check could not run, 0 all pass."""
    options = [*(["--matrix", str(matrix)] if matrix else []), *(["--cells", cells] if cells else []),
               *(["--validators", validators] if validators else []),
               *(["--workers", str(workers)] if workers else [])]
    codes = []
    for path in files:
        console.rule(f"modelcompat check {path}", style="dim")
        # A process per file: each check is the CLI's, and a crash in one file's check is that file's code.
        codes.append(subprocess.call([sys.executable, "-m", "modelcompat.cli", "check", *options, str(path)]))
    failed = [str(p) for p, c in zip(files, codes) if c]
    if failed:
        console.print(f"modelcompat: {len(failed)} of {len(files)} model file(s) did not pass: {', '.join(failed)}",
                      highlight=False)
    raise typer.Exit(worst(codes))
