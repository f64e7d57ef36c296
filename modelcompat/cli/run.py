"""`modelcompat run` (check a package against a matrix) and `modelcompat plan` (what run would do)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelcompat import settings
from modelcompat.cli.console import console, print_error
from modelcompat.cli.options import (
    CellsOption,
    ForceValidatorsOption,
    MatrixOption,
    ModelOption,
    StoreOption,
    ValidatorsOption,
    open_store,
    split_csv,
)
from modelcompat.errors import InputError
from modelcompat.results.verdict import ExitCode

if TYPE_CHECKING:
    from modelcompat.planning.plan import PlannedCheck
    from modelcompat.results.summary import RunSummary


def run(
    matrix: MatrixOption = None,
    model: ModelOption = None,
    validators: ValidatorsOption = None,
    cells: CellsOption = None,
    store: StoreOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run summary JSON here (see docs/run-summary.md).")] = None,
    dask_address: Annotated[str | None, typer.Option(help="Existing Dask scheduler (default: $MODELCOMPAT_DASK_ADDRESS, else a local cluster; one cell to run: this process).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Local Dask worker processes (default: $MODELCOMPAT_WORKERS or the CPU count).")] = None,
    force: Annotated[bool, typer.Option(help="Ignore anything cached and re-run every check.")] = False,
    force_validators: ForceValidatorsOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect and Dask logs.")] = False,
) -> None:
    """Check a model package against a matrix; print the cells × validators table.

    Unchanged checks are reused from the store; a run that reuses every check starts no Prefect server
    (unless PREFECT_API_URL is set) and no Dask cluster, and is still recorded in the store.
    """
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # Dask's own logger defaults to INFO (cluster start/stop chatter); workers inherit this too.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.model.package import load_package
    from modelcompat.validators.registry import Registry

    # Validate every input before starting anything (an InputError: exit 2, nothing run).
    matrix_path = matrix or settings.default_matrix()
    load_matrix(matrix_path).select(cells)
    if model is not None:
        load_package(model)
    names = split_csv(validators)
    Registry.discover().select(names)
    forced = split_csv(force_validators)
    if forced:
        Registry.discover().select(forced)
    settings.timing_mode()  # MODELCOMPAT_TIMING: refused here, not in every cell
    if model is None:
        from modelcompat.model.demo import build_demo
        with console.status("building the demo model package (once)…"):
            model = build_demo().root
    summary = run_and_print(matrix_path=matrix_path, model=model, validators=names, cells=cells, store=store,
                            dask_address=dask_address or settings.dask_address(),
                            workers=workers or settings.workers(), force=force, force_validators=forced,
                            verbose=verbose)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(summary.to_json_text())
        console.print(f"summary written to {json_out}")
    raise typer.Exit(summary.verdict.exit_code)


def run_and_print(*, verbose: bool, **flow_args: Any) -> RunSummary:
    """Run the flow and print its matrix; a run that breaks (not a check) is one error line and exit 3."""
    try:
        summary = _run_flow(**flow_args)
    except InputError:
        raise  # the app reports it (exit 2)
    except Exception as exc:  # noqa: BLE001  the run itself broke (not a check): say so plainly, exit 3
        if verbose:
            console.print_exception()
        print_error(f"the run did not complete: {type(exc).__name__}: {exc}"
                    + ("" if verbose else "\n  (re-run with --verbose for the traceback)"))
        raise typer.Exit(ExitCode.ERROR) from None
    from modelcompat.render.terminal import print_summary

    print_summary(console, summary)
    _print_declared_provenance(flow_args["model"])
    return summary


def _print_declared_provenance(model: Path) -> None:
    """The package's provenance after the matrix when its manifest declares one (with what each artifact says of
    itself); a package without a declaration prints as before (`modelcompat report` shows its artifacts' facts)."""
    from modelcompat.model.package import load_package
    from modelcompat.model.provenance import package_provenance
    from modelcompat.render.provenance import print_provenance

    package = load_package(model)
    if package.manifest.provenance is not None and not package.manifest.provenance.is_empty():
        print_provenance(console, package_provenance(package))


def _run_flow(*, matrix_path: Path, model: Path, validators: list[str] | None, cells: str | None, store: str | None,
              dask_address: str | None, workers: int, force: bool,
              force_validators: list[str] | None) -> RunSummary:
    """Run the flow against one Prefect API, with a progress bar fed by the flow's cell completions.

    With no Prefect API configured, the run is planned first without Prefect: when nothing is to run, it is
    finished here by the flow's own steps (compare, append to the store, summary; `flow_run_id` null), with
    no server started for it and neither Prefect nor Dask imported. Otherwise the flow runs it.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from modelcompat.execution import progress as progress_hook
    from modelcompat.execution.harness import check_cell
    from modelcompat.orchestration.inline_cells import runs_inline, start_inline
    from modelcompat.orchestration.matrix_run import announce, finish_run, hand_over, prepare_run
    from modelcompat.orchestration.local_cluster import ClusterStart
    from modelcompat.orchestration.prefect_api import configured_api_url, launch_own_server, prefect_api
    from modelcompat.orchestration.resources import offered_resources
    from modelcompat.results.summary import RunSummary

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True)
    task_id = bar.add_task("planning…", total=None)

    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "planned":
            bar.update(task_id, total=data["total"],
                       description=f"{len(data['cells'])} cells: {data['to_run']} checks to run, "
                                   f"{data['total'] - data['to_run']} reused or skipped")
        elif event == "cell_done":
            bar.update(task_id, advance=len(data["reports"]), description=f"done {data['cell']}")

    progress_hook.add_listener(on_event)
    cluster: ClusterStart | None = None
    try:
        with bar:
            run = prepare_run(matrix=str(matrix_path), model=str(model), validators=validators, cells=cells,
                              store=store, params=None, force=force, force_validators=force_validators,
                              offered=offered_resources(dask_address))
            api_url = configured_api_url()
            if api_url is None and not run.jobs:
                announce(run)
                return finish_run(run, trigger="cli", flow_run_id=None).summary
            parameters = {"matrix": str(matrix_path), "model": str(model), "validators": validators, "cells": cells,
                          "store": store, "params": None, "force": force, "force_validators": force_validators,
                          "trigger": "cli", "run_id": run.run_id}
            if api_url is not None and (not run.jobs or runs_inline(dask_address, len(run.jobs))):
                # No Dask to start: the run happens here, recorded on the server as a check-matrix flow run
                # without Prefect's engine (orchestration/recorded_run.py says what that saves).
                from modelcompat.orchestration.recorded_run import recorded_run

                run.running = start_inline(check_cell, run.jobs)
                return recorded_run(run, api_url=api_url, check_cell=check_cell, parameters=parameters).summary
            bar.update(task_id, description="starting Prefect…")
            # The run's own server (unless one is configured) and its local cluster start now, side by side,
            # while this process imports Prefect; the server's URL is known before it answers, so the
            # workers get it as they would have inherited it.
            server = launch_own_server(home=str(settings.home() / "prefect"))
            if not dask_address and run.jobs and not runs_inline(dask_address, len(run.jobs)):
                cluster = ClusterStart(workers, run.preload, {"PREFECT_API_URL": server.api_url} if server else {})
            with prefect_api(server=server):  # sets its variables before the cell starts
                if runs_inline(dask_address, len(run.jobs)):
                    # The one cell starts now, in a thread (its probe in its own process), while Prefect imports.
                    run.running = start_inline(check_cell, run.jobs)
                hand_over(run)  # the flow takes this plan (and the started cell) rather than planning again
                from modelcompat.flows.check_matrix import check_matrix
                from modelcompat.orchestration.dask_runner import make_task_runner

                flow = check_matrix.with_options(task_runner=make_task_runner(dask_address, workers, cluster))
                return RunSummary.model_validate(flow(**parameters))
    finally:
        progress_hook.remove_listener(on_event)
        if cluster is not None:
            cluster.close_unused()


def plan(
    matrix: MatrixOption = None,
    model: ModelOption = None,
    validators: ValidatorsOption = None,
    cells: CellsOption = None,
    store: StoreOption = None,
    force: Annotated[bool, typer.Option(help="Plan as if nothing were cached.")] = False,
    force_validators: ForceValidatorsOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the plan as JSON here.")] = None,
    dask_address: Annotated[str | None, typer.Option(help="Plan hardware routing against this Dask scheduler's workers (default: this host).")] = None,
    markdown: Annotated[bool, typer.Option(help="Print the plan as a markdown table.")] = False,
) -> None:
    """Show what `run` would do, without running anything: each check `run` (and why) or `cached`."""
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.model.package import load_package
    from modelcompat.planning.plan import make_plan, plan_markdown
    from modelcompat.render.tables import plan_counts, plan_table
    from modelcompat.validators.registry import Registry

    loaded = load_matrix(matrix or settings.default_matrix())
    selected = loaded.select(cells)
    registry = Registry.discover()
    names = registry.select(split_csv(validators))
    forced = set(registry.select(split_csv(force_validators))) if force_validators else set()
    if model is None:
        from modelcompat.model.demo import build_demo
        package = build_demo()
    else:
        package = load_package(model)
    checks = make_plan(selected, names, package, registry, store=open_store(store), force=force,
                       force_validators=forced, env_cache=settings.env_cache(), offered=_offered(dask_address))
    if json_out:
        json_out.write_text(json.dumps([_plan_json(p) for p in checks], indent=2) + "\n")
    if markdown:
        console.print(plan_markdown(checks), markup=False, highlight=False)
        return
    console.print(plan_table(checks, f"plan for {package.manifest.name} {package.manifest.version} × {loaded.name}"))
    console.print(plan_counts(checks))


def _offered(dask_address: str | None) -> dict[str, Any]:
    """The resources each worker offers: the scheduler's workers, or this host (where the cells will run)."""
    from modelcompat.orchestration.resources import offered_resources

    return offered_resources(dask_address or settings.dask_address())


def _plan_json(p: PlannedCheck) -> dict[str, Any]:
    return {"cell": p.cell.id, "validator": p.validator, "decision": p.decision, "reason": p.reason,
            "cache_key": p.cache_key,
            "cached_from": (p.reused.cached_from or p.reused.run_id) if p.reused else None}
