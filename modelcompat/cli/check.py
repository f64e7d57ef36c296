"""`modelcompat check MODEL_FILE...`: no manifest, no payload. Inputs are synthesised from the model's contract,
the host runtime computes the reference, and the matrix runs as `modelcompat run` runs it (same output and exits).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from modelcompat import settings
from modelcompat.cli.console import console
from modelcompat.cli.options import CellsOption, MatrixOption, StoreOption, ValidatorsOption, split_csv


def check(
    model_files: Annotated[list[Path], typer.Argument(help="Model file(s) of one model: ONNX (with its external data beside it), .pt2 and/or TorchScript.")],
    shape: Annotated[list[str] | None, typer.Option("--shape", help="An input's concrete shape, e.g. --shape input_ids=2,128 (repeatable; default: batch 2, other symbolic dims 16).")] = None,
    matrix: MatrixOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run summary JSON here, with a `check` object saying where the reference came from.")] = None,
    validators: ValidatorsOption = None,
    cells: CellsOption = None,
    store: StoreOption = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Local Dask worker processes (default: $MODELCOMPAT_WORKERS or the CPU count).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect and Dask logs.")] = False,
) -> None:
    """Check model files against a matrix with no manifest and no payload (inputs synthesised from the model)."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from modelcompat.cli.run import run_and_print
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.model.build import detect_formats
    from modelcompat.model.check_package import prepare
    from modelcompat.model.synthesize import parse_shape_options
    from modelcompat.scanning.gate import refuse_malicious
    from modelcompat.validators.registry import Registry

    # Every input is validated before anything is built or run (an InputError: exit 2).
    shapes = parse_shape_options(shape)
    matrix_path = matrix or settings.default_matrix()
    load_matrix(matrix_path).select(cells)
    names = split_csv(validators)
    Registry.discover().select(names)
    # Scan first, whatever the file: one that would run code is malicious (exit 1), before its format is decided
    # or the host loads it for the reference.
    refuse_malicious(model_files)
    detect_formats(list(model_files))
    with console.status("synthesising inputs and computing the host reference…"):
        made = prepare(list(model_files), shapes)
    _print_provenance(made.package.root, made.provenance, made.reused)
    summary = run_and_print(matrix_path=matrix_path, model=made.package.root, validators=names, cells=cells,
                            store=store, dask_address=settings.dask_address(), workers=workers or settings.workers(),
                            force=False, force_validators=None, verbose=verbose)
    console.print(_reference_line(made.provenance), markup=False, highlight=False)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        document = {**summary.to_json(), "check": {**made.provenance, "package": str(made.package.root)}}
        json_out.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"summary written to {json_out}")
    raise typer.Exit(summary.verdict.exit_code)


def _print_provenance(root: Path, provenance: dict, reused: bool) -> None:
    console.print(f"check package: {root} ({'reused' if reused else 'built'}); inputs: "
                  + "; ".join(provenance.get("inputs", [])), markup=False, highlight=False)


def _reference_line(provenance: dict) -> str:
    if provenance.get("reference") is None:
        return f"reference: none. {provenance['note']}"
    return (f"reference: computed by the host's {provenance['reference_runtime']} on synthesised inputs: "
            "self-consistency across runtimes, not ground truth")
