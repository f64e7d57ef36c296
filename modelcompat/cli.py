"""`modelcompat` command line: run, plan, matrix show, validators, package, demo.

Exit codes: 0 all pass/warn/skipped · 1 a fail (or regression) · 2 invalid input, nothing run · 3 an error, no fail.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from modelcompat import __version__, settings
from modelcompat.errors import InputError, ModelcompatError
from modelcompat.summary import EXIT_INPUT

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Catch incompatibilities between ML model artifacts and the serving runtimes they will run on.")
matrix_app = typer.Typer(no_args_is_help=True, help="Inspect compatibility matrices.")
app.add_typer(matrix_app, name="matrix")
console = Console()
err_console = Console(stderr=True)


def _fail_input(exc: InputError) -> None:
    err_console.print(f"[bold red]error:[/bold red] {exc.render()}", highlight=False)
    raise typer.Exit(EXIT_INPUT)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        console.print(f"modelcompat {__version__}")
        raise typer.Exit(0)


@app.command()
def run(
    matrix: Annotated[Optional[Path], typer.Option(help="Matrix YAML (default: matrices/default.yaml or $MODELCOMPAT_MATRIX).")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Model package folder (default: the built-in demo package, built once).")] = None,
    validators: Annotated[Optional[str], typer.Option(help="Comma-separated validator names (default: all installed).")] = None,
    cells: Annotated[Optional[str], typer.Option(help="Glob(s) matched against cell ids runtime/hardware/backend, comma-separated.")] = None,
    store: Annotated[Optional[str], typer.Option(help="Store folder or URI (default: $MODELCOMPAT_STORE or .modelcompat/store).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the run summary JSON here (see docs/run-summary.md).")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Existing Dask scheduler (default: $MODELCOMPAT_DASK_ADDRESS, else a local cluster).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Local Dask worker processes (default: $MODELCOMPAT_WORKERS or the CPU count).")] = None,
    force: Annotated[bool, typer.Option(help="Ignore anything cached and re-run every check.")] = False,
    force_validators: Annotated[Optional[str], typer.Option(help="Re-run these validators (comma-separated) even if cached.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect and Dask logs.")] = False,
) -> None:
    """Check a model package against a matrix; print the cells × validators table."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # Dask's own logger defaults to INFO (cluster start/stop chatter); workers inherit this too.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from modelcompat.matrix import load_matrix
    from modelcompat.package import load_package
    from modelcompat.validators.registry import Registry

    # Validate every input before starting anything (exit 2, nothing run).
    try:
        matrix_path = matrix or settings.default_matrix()
        loaded = load_matrix(matrix_path)
        loaded.select(cells)
        if model is not None:
            load_package(model)
        names = _split(validators)
        Registry.discover().select(names)
        forced = _split(force_validators)
        if forced:
            Registry.discover().select(forced)
    except InputError as exc:
        _fail_input(exc)
    if model is None:
        from modelcompat.demo import build_demo
        with console.status("building the demo model package (once)…"):
            model = build_demo().root
    try:
        summary = _run_flow(matrix_path=matrix_path, model=model, validators=names, cells=cells, store=store,
                            dask_address=dask_address or settings.dask_address(),
                            workers=workers or settings.workers(), force=force, force_validators=forced)
    except InputError as exc:
        _fail_input(exc)
    except Exception as exc:  # the run itself broke (not a check): say so plainly, exit 3
        if verbose:
            console.print_exception()
        err_console.print(f"[bold red]error:[/bold red] the run did not complete: {type(exc).__name__}: {exc}"
                          + ("" if verbose else "\n  (re-run with --verbose for the traceback)"), highlight=False)
        raise typer.Exit(3) from None
    from modelcompat.render import print_summary
    from modelcompat.summary import exit_code

    print_summary(console, summary)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2) + "\n")
        console.print(f"summary written to {json_out}")
    raise typer.Exit(exit_code(summary["verdict"]))


def _run_flow(*, matrix_path: Path, model: Path, validators: list[str] | None, cells: str | None, store: str | None,
              dask_address: str | None, workers: int, force: bool,
              force_validators: list[str] | None) -> dict[str, Any]:
    """Run the flow against one Prefect API, with a progress bar fed by the flow's cell completions."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from modelcompat import progress as progress_hook
    from modelcompat.orchestration import make_task_runner, prefect_api

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True)
    task_id = bar.add_task("starting Prefect and Dask…", total=None)

    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "planned":
            bar.update(task_id, total=data["total"],
                       description=f"{len(data['cells'])} cells: {data['to_run']} checks to run, "
                                   f"{data['total'] - data['to_run']} reused or skipped")
        elif event == "cell_done":
            bar.update(task_id, advance=len(data["reports"]), description=f"done {data['cell']}")

    progress_hook.add_listener(on_event)
    try:
        with bar, prefect_api(home=str(settings.home() / "prefect")):
            from modelcompat.flows.check_matrix import check_matrix

            flow = check_matrix.with_options(task_runner=make_task_runner(dask_address, workers))
            return flow(matrix=str(matrix_path), model=str(model), validators=validators, cells=cells,
                        store=store, force=force, force_validators=force_validators, trigger="cli")
    finally:
        progress_hook.remove_listener(on_event)


@app.command()
def plan(
    matrix: Annotated[Optional[Path], typer.Option(help="Matrix YAML (default: matrices/default.yaml or $MODELCOMPAT_MATRIX).")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Model package folder (default: the built-in demo package).")] = None,
    validators: Annotated[Optional[str], typer.Option(help="Comma-separated validator names (default: all installed).")] = None,
    cells: Annotated[Optional[str], typer.Option(help="Glob(s) matched against cell ids, comma-separated.")] = None,
    store: Annotated[Optional[str], typer.Option(help="Store folder or URI (default: $MODELCOMPAT_STORE or .modelcompat/store).")] = None,
    force: Annotated[bool, typer.Option(help="Plan as if nothing were cached.")] = False,
    force_validators: Annotated[Optional[str], typer.Option(help="Plan these validators as forced re-runs.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the plan as JSON here.")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Plan hardware routing against this Dask scheduler's workers (default: this host).")] = None,
    markdown: Annotated[bool, typer.Option(help="Print the plan as a markdown table.")] = False,
) -> None:
    """Show what `run` would do, without running anything: each check `run` (and why) or `cached`."""
    from rich.table import Table

    from modelcompat.matrix import load_matrix
    from modelcompat.package import load_package
    from modelcompat.plan import make_plan, plan_markdown
    from modelcompat.store import Store
    from modelcompat.validators.registry import Registry

    try:
        loaded = load_matrix(matrix or settings.default_matrix())
        selected = loaded.select(cells)
        registry = Registry.discover()
        names = registry.select(_split(validators))
        forced = set(registry.select(_split(force_validators))) if force_validators else set()
        if model is None:
            from modelcompat.demo import build_demo
            package = build_demo()
        else:
            package = load_package(model)
    except InputError as exc:
        _fail_input(exc)
    from modelcompat.orchestration import detect_local_resources, worker_resources

    address = dask_address or settings.dask_address()
    if address:
        from distributed import Client

        with Client(address, timeout=30) as client:
            offered = worker_resources(client)
    else:  # the cells will run on this host: plan hardware routing against it
        offered = {"local": detect_local_resources()}
    checks = make_plan(selected, names, package, registry, store=Store(store or settings.store_uri()),
                       force=force, force_validators=forced, env_cache=settings.env_cache(), offered=offered)
    if json_out:
        json_out.write_text(json.dumps([{"cell": p.cell.id, "validator": p.validator, "decision": p.decision,
                                         "reason": p.reason, "cache_key": p.cache_key,
                                         "cached_from": (p.reused.cached_from or p.reused.run_id) if p.reused else None}
                                        for p in checks], indent=2) + "\n")
    if markdown:
        console.print(plan_markdown(checks), markup=False, highlight=False)
        return
    table = Table(title=f"plan for {package.manifest.name} {package.manifest.version} × {loaded.name}",
                  title_justify="left")
    table.add_column("cell", no_wrap=True)
    table.add_column("validator")
    table.add_column("decision")
    table.add_column("why")
    style = {"run": "bold", "cached": "green", "skipped": "dim"}
    for p in checks:
        table.add_row(p.cell.id, p.validator, f"[{style[p.decision]}]{p.decision}[/]", p.reason)
    console.print(table)
    counts = {d: sum(1 for p in checks if p.decision == d) for d in ("run", "cached", "skipped")}
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))


@matrix_app.command("show")
def matrix_show(
    path: Annotated[Path, typer.Argument(help="Matrix YAML file.")],
    cells: Annotated[Optional[str], typer.Option(help="Only cells matching these glob(s).")] = None,
) -> None:
    """Print the cells a matrix expands to."""
    from rich.table import Table

    from modelcompat.matrix import load_matrix

    try:
        loaded = load_matrix(path)
        selected = loaded.select(cells)
    except InputError as exc:
        _fail_input(exc)
    table = Table(title=f"{loaded.name}: {len(selected)} cells", title_justify="left")
    table.add_column("cell", no_wrap=True)
    for col in ("runtime", "env", "hardware", "backend", "consumes", "precision"):
        table.add_column(col)
    for c in selected:
        env = "host" if c.runtime.env == "host" else " ".join(c.runtime.requirements)
        table.add_row(c.id, f"{c.runtime.kind}", env, c.hardware.id, c.backend.provider or c.backend.mode or "",
                      c.backend.consumes(), c.backend.precision)
    console.print(table)


@app.command("validators")
def list_validators() -> None:
    """List the installed validators (entry points `modelcompat.validators`)."""
    from rich.table import Table

    from modelcompat.validators.registry import Registry

    registry = Registry.discover()
    table = Table(title="installed validators", title_justify="left")
    for col in ("name", "version", "inputs", "params", "description"):
        table.add_column(col)
    for name, cls in registry.validators.items():
        params = ", ".join(cls.Params.model_fields) or "-"
        table.add_row(name, cls.version, ", ".join(cls.inputs), params, cls.description)
    for name, failure in registry.failures.items():
        table.add_row(name, "?", "", "", f"[red]not loadable: {failure.reason}[/red]")
    console.print(table)


@app.command()
def package(
    model_files: Annotated[list[Path], typer.Argument(help="Model file(s): ONNX, TorchScript (.pt) and/or torch.export (.pt2) of one model.")],
    payload: Annotated[Path, typer.Option(help="Representative inputs (.npz keyed by input name).")],
    name: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Model version.")],
    out: Annotated[Path, typer.Option(help="Package folder to create.")],
    reference: Annotated[Optional[Path], typer.Option(help="Reference outputs (.npz keyed by output name); computed on the host runtime when omitted.")] = None,
    requirement: Annotated[Optional[list[str]], typer.Option("--requirement", help="Declared runtime requirement, e.g. 'onnxruntime>=1.17' (repeatable).")] = None,
) -> None:
    """Create a model package: artifacts + sha256, I/O contract, payload, reference outputs."""
    from modelcompat.packaging import build_package

    try:
        pkg = build_package(list(model_files), payload, out, name=name, version=version, reference=reference,
                            requirements=requirement or [])
    except InputError as exc:
        _fail_input(exc)
    formats = ", ".join(f"{a.format} ({a.sha256[:12]}…)" for a in pkg.manifest.artifacts)
    console.print(f"wrote {pkg.manifest_path}: {pkg.manifest.name} {pkg.manifest.version}: {formats}")


@app.command()
def demo(
    out: Annotated[Optional[Path], typer.Option(help="Where to write the demo package (default: $MODELCOMPAT_HOME/demo).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a current demo package exists.")] = False,
) -> None:
    """Build the built-in demo package from a small torch model (ONNX, TorchScript, torch.export)."""
    from modelcompat.demo import build_demo

    pkg = build_demo(out, force=force)
    console.print(f"demo package: {pkg.root}")


def main() -> None:
    """Console-script entry: user errors become one clear message and exit 2, never a traceback."""
    try:
        app()
    except InputError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc.render()}", highlight=False)
        sys.exit(EXIT_INPUT)
    except ModelcompatError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        sys.exit(3)


if __name__ == "__main__":
    main()
