"""`modelcompat remediate`: known transforms tried on a stored run's failing cells, offered only once verified."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelcompat.cli.console import console
from modelcompat.cli.options import StoreOption, open_store, split_csv
from modelcompat.results.verdict import ExitCode


def remediate(
    run_id: Annotated[str, typer.Argument(help="The stored run whose failing cells to remediate.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the verified packages and remediation.json/.md.")],
    cells: Annotated[str | None, typer.Option("--cells", help="Only the failing cells matching these globs (comma-separated).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="The run's package folder (default: found by the run's "
                                              "model sha256 among the demo, registered and `check` packages).")] = None,
    matrix: Annotated[Path | None, typer.Option("--matrix", help="The run's matrix (default: the path the run recorded).")] = None,
    transforms: Annotated[str | None, typer.Option("--transforms", help="Try only these transforms, whatever the findings "
                                                   "(comma-separated): graph-optimization, ir-rewrite, opset-down, "
                                                   "torch-reexport, external-data, fp16-io32.")] = None,
    store: StoreOption = None,
) -> None:
    """Try known fixes for a run's failing cells and offer only the verified ones.

    Each candidate (opset down-conversion, IR rewrite, external data consolidated or split, fp16 with fp32 I/O,
    a lower graph optimisation level, torch re-export at an opset) becomes a new package that is re-run on every
    cell of the run: it is offered only when the failing cells now pass and no other cell got worse (parity is
    against the original reference). Exit 0: a verified fix; 1: none; 2: bad input.
    """
    from modelcompat.remediation.attempt import remediate as run_remediation

    result = run_remediation(open_store(store), run_id, out, cells=cells, model=model, matrix=matrix,
                             transforms=split_csv(transforms), store_arg=store)
    for verdict in result.verdicts:
        name = f"{verdict.candidate.id} ({verdict.candidate.label})"
        if verdict.verified:
            console.print(f"[green]verified[/green] {name}: {verdict.package}", highlight=False)
        else:
            console.print(f"[red]rejected[/red] {name}: {'; '.join(verdict.reasons)}", highlight=False, soft_wrap=True)
    if not result.verdicts:
        console.print("no transform applies to these findings", highlight=False)
    if result.document.get("fix"):
        console.print(result.document["fix"], highlight=False, soft_wrap=True)
    console.print(f"report: {result.report} (and remediation.md)", highlight=False, soft_wrap=True)
    raise typer.Exit(ExitCode.OK if result.verified else ExitCode.FAIL)
