"""`modelcompat sbom`: a stored run as a CycloneDX 1.6 ML-BOM (the model's files with hashes, each cell's runtime
environment with every installed package)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelcompat.cli.console import err_console
from modelcompat.cli.options import StoreOption, open_store


def sbom(
    run_id: Annotated[str, typer.Argument(help="The stored run to describe.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the CycloneDX JSON.")],
    model: Annotated[Path | None, typer.Option("--model", help="The run's package folder (default: found by the "
                                               "run's model sha256 among the demo, registered and `check` "
                                               "packages).")] = None,
    matrix: Annotated[Path | None, typer.Option("--matrix", help="The run's matrix (default: the path the run "
                                                "recorded).")] = None,
    store: StoreOption = None,
) -> None:
    """Write a CycloneDX 1.6 JSON ML-BOM of a run: the model (name, version, sha256, verdict) and every file it is
    made of with its SHA-256 and what it says of itself (ONNX producer, IR, opsets), and, for each cell that ran,
    its runtime environment with every installed package and version. Validated against the CycloneDX schema."""
    from modelcompat import settings
    from modelcompat.execution.run_inputs import find_package, run_cells
    from modelcompat.files.atomic import write_text
    from modelcompat.render.sbom import build_sbom
    from modelcompat.runtime.environments import installed_packages, provision

    store_ = open_store(store)
    record = store_.require_run(run_id)
    cells = run_cells(record, matrix)
    package = find_package(record, model)
    ran: dict[str, str | None] = {}
    for report in store_.load_reports(run_id):
        if report.status.value != "skipped" and report.cell in cells:
            ran[report.cell] = ran.get(report.cell) or report.runtime_version
    environments = [(cells[cell_id], installed_packages(provision(cells[cell_id].runtime, settings.env_cache())), version)
                    for cell_id, version in sorted(ran.items())]
    write_text(out, build_sbom(record, package, environments))
    err_console.print(f"CycloneDX 1.6 SBOM of run {run_id} ({len(package.manifest.artifacts)} artifact(s), "
                      f"{len(environments)} cell environment(s)) written to {out}", highlight=False)
