"""`modelcompat` command line: run, plan, matrix show, validators, package, demo, baseline, store, history, report.

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
from modelcompat.results.summary import EXIT_INPUT

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Catch incompatibilities between ML model artifacts and the serving runtimes they will run on.")
matrix_app = typer.Typer(no_args_is_help=True, help="Inspect compatibility matrices.")
app.add_typer(matrix_app, name="matrix")
registry_app = typer.Typer(no_args_is_help=True, help="The local model registry (versions, aliases, verdicts).")
app.add_typer(registry_app, name="registry")
alias_app = typer.Typer(no_args_is_help=True, help="Model version aliases (e.g. production).")
registry_app.add_typer(alias_app, name="alias")
baseline_app = typer.Typer(no_args_is_help=True, help="Accepted baselines: promote a run, show a model's baseline.")
app.add_typer(baseline_app, name="baseline")
store_app = typer.Typer(no_args_is_help=True, help="Maintain the report store (compaction, orphan cleanup).")
app.add_typer(store_app, name="store")
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


# The selection options `run` and `plan` share (plan takes the same ones, so it plans exactly that run).
MatrixOption = Annotated[Optional[Path], typer.Option("--matrix", help="Matrix YAML (default: matrices/default.yaml or $MODELCOMPAT_MATRIX).")]
ModelOption = Annotated[Optional[Path], typer.Option("--model", help="Model package folder (default: the built-in demo package, built once).")]
ValidatorsOption = Annotated[Optional[str], typer.Option("--validators", help="Comma-separated validator names (default: all installed).")]
CellsOption = Annotated[Optional[str], typer.Option("--cells", help="Glob(s) matched against cell ids runtime/hardware/backend, comma-separated.")]
StoreOption = Annotated[Optional[str], typer.Option("--store", help="Store folder or URI (default: $MODELCOMPAT_STORE or .modelcompat/store).")]
ForceValidatorsOption = Annotated[Optional[str], typer.Option("--force-validators", help="Re-run these validators (comma-separated) even if cached.")]


@app.command()
def run(
    matrix: MatrixOption = None,
    model: ModelOption = None,
    validators: ValidatorsOption = None,
    cells: CellsOption = None,
    store: StoreOption = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the run summary JSON here (see docs/run-summary.md).")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Existing Dask scheduler (default: $MODELCOMPAT_DASK_ADDRESS, else a local cluster).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Local Dask worker processes (default: $MODELCOMPAT_WORKERS or the CPU count).")] = None,
    force: Annotated[bool, typer.Option(help="Ignore anything cached and re-run every check.")] = False,
    force_validators: ForceValidatorsOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect and Dask logs.")] = False,
) -> None:
    """Check a model package against a matrix; print the cells × validators table."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # Dask's own logger defaults to INFO (cluster start/stop chatter); workers inherit this too.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.model.package import load_package
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
        from modelcompat.model.demo import build_demo
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
                          + ("" if verbose else "\n  (re-run with --verbose for the traceback)"), highlight=False,
                          soft_wrap=True)  # one line per message, whatever the terminal width (issue 8)
        raise typer.Exit(3) from None
    from modelcompat.render.terminal import print_summary
    from modelcompat.results.summary import exit_code

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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from modelcompat.execution import progress as progress_hook
    from modelcompat.orchestration.dask_runner import make_task_runner
    from modelcompat.orchestration.prefect_api import prefect_api

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
    matrix: MatrixOption = None,
    model: ModelOption = None,
    validators: ValidatorsOption = None,
    cells: CellsOption = None,
    store: StoreOption = None,
    force: Annotated[bool, typer.Option(help="Plan as if nothing were cached.")] = False,
    force_validators: ForceValidatorsOption = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the plan as JSON here.")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Plan hardware routing against this Dask scheduler's workers (default: this host).")] = None,
    markdown: Annotated[bool, typer.Option(help="Print the plan as a markdown table.")] = False,
) -> None:
    """Show what `run` would do, without running anything: each check `run` (and why) or `cached`."""
    from rich.table import Table

    from modelcompat.matrix.spec import load_matrix
    from modelcompat.model.package import load_package
    from modelcompat.planning.plan import make_plan, plan_markdown
    from modelcompat.store.store import Store
    from modelcompat.validators.registry import Registry

    try:
        loaded = load_matrix(matrix or settings.default_matrix())
        selected = loaded.select(cells)
        registry = Registry.discover()
        names = registry.select(_split(validators))
        forced = set(registry.select(_split(force_validators))) if force_validators else set()
        if model is None:
            from modelcompat.model.demo import build_demo
            package = build_demo()
        else:
            package = load_package(model)
    except InputError as exc:
        _fail_input(exc)
    from modelcompat.orchestration.dask_runner import (
        detect_local_resources,
        worker_resources,
    )

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

    from modelcompat.matrix.spec import load_matrix

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
    from modelcompat.model.build import build_package

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
    from modelcompat.model.demo import build_demo

    pkg = build_demo(out, force=force)
    console.print(f"demo package: {pkg.root}")


StoreOption = Annotated[Optional[str], typer.Option(help="Store folder or URI (default: $MODELCOMPAT_STORE or .modelcompat/store).")]


def _store(uri: str | None):
    from modelcompat.store.store import Store

    return Store(uri or settings.store_uri())


@baseline_app.command("promote")
def baseline_promote(
    run_id: Annotated[Optional[str], typer.Argument(help="The run whose reports become the baseline.")] = None,
    rule: Annotated[Optional[str], typer.Option(help="Pick the run by rule instead: last-passing (needs --model).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model name, with --rule.")] = None,
    alias: Annotated[Optional[str], typer.Option(help="With --rule: only runs of the version this registry alias/stage (e.g. production) points at.")] = None,
    registry: Annotated[Optional[str], typer.Option(help="With --alias: registry folder or URI (default: $MODELCOMPAT_REGISTRY).")] = None,
    cells: Annotated[Optional[str], typer.Option(help="Only cells matching these glob(s), comma-separated.")] = None,
    validators: Annotated[Optional[str], typer.Option(help="Only these validators (comma-separated).")] = None,
    store: StoreOption = None,
) -> None:
    """Make a run (or the run a rule picks) the accepted baseline of its model, per cell × validator."""
    from modelcompat.baseline.promotion import promote, promote_rule

    try:
        if (run_id is None) == (rule is None):
            raise InputError("give either RUN_ID or --rule", field="RUN_ID/--rule",
                             fix="modelcompat baseline promote RUN_ID, or --rule last-passing --model NAME")
        if rule is not None:
            if model is None:
                raise InputError("--rule needs --model", field="--model", fix="--rule last-passing --model NAME")
            promotion = promote_rule(_store(store), model, rule, alias=alias, registry=registry)
        elif alias is not None:
            raise InputError("--alias goes with --rule", field="--alias", fix="--rule last-passing --model NAME --alias production")
        else:
            promotion = promote(_store(store), run_id, cells=_split(cells), validators=_split(validators))
    except InputError as exc:
        _fail_input(exc)
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(_count(p[2] for p in promotion.pointers).items()))
    console.print(f"promoted run {promotion.run_id} as the baseline of {promotion.model}: "
                  f"{len(promotion.pointers)} checks ({statuses}) by {promotion.promoted_by}"
                  + (f" (rule {promotion.rule})" if promotion.rule != "manual" else ""), highlight=False)


@store_app.command("compact")
def store_compact(
    older_than_runs: Annotated[Optional[int], typer.Option(help="Leave the newest N runs as they are (default: compact all).")] = None,
    store: StoreOption = None,
) -> None:
    """Merge the reports files of many runs into one Parquet file (atomic for readers), then delete the old ones."""
    done = _store(store).compact(older_than_runs)
    if done.file is None:
        console.print("nothing to compact (fewer than two reports files to merge)")
        return
    console.print(f"compacted {len(done.run_ids)} runs ({done.rows} report rows) into {done.file}; "
                  f"removed {len(done.removed)} files", highlight=False)


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


@baseline_app.command("show")
def baseline_show(
    model: Annotated[str, typer.Argument(help="Model name (as in its manifest).")],
    store: StoreOption = None,
) -> None:
    """Print a model's baseline (cell × validator → run) and its promotion history."""
    from rich.table import Table

    from modelcompat.baseline.promotion import promotions

    history = promotions(_store(store), model)
    if not history:
        _fail_input(InputError(f"no baseline for model {model!r}", field="MODEL",
                               fix="promote a run: `modelcompat baseline promote RUN_ID` "
                                   "or `--rule last-passing --model NAME`"))
    current: dict[tuple[str, str], tuple[str, str, Any]] = {}
    for p in history:
        for cell, validator, status in p.pointers:
            current[(cell, validator)] = (p.run_id, status, p)
    table = Table(title=f"baseline of {model}: {len(current)} checks", title_justify="left")
    for col in ("cell", "validator", "status", "run", "promoted"):
        table.add_column(col, no_wrap=col in ("cell", "run"))
    for (cell, validator), (rid, status, p) in sorted(current.items()):
        table.add_row(cell, validator, status, rid, f"{p.promoted_at:%Y-%m-%d %H:%M} by {p.promoted_by}")
    console.print(table)
    log = Table(title="promotions (oldest first)", title_justify="left")
    for col in ("when", "by", "run", "rule", "checks"):
        log.add_column(col)
    for p in history:
        log.add_row(f"{p.promoted_at:%Y-%m-%d %H:%M:%S}", p.promoted_by, p.run_id, p.rule, str(len(p.pointers)))
    console.print(log)


_SPARK = "▁▂▃▄▅▆▇█"


def _spark(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    if hi - lo <= 0:
        return _SPARK[3] * len(values)
    return "".join(_SPARK[round((v - lo) / (hi - lo) * (len(_SPARK) - 1))] for v in values)


@app.command()
def history(
    model: Annotated[str, typer.Argument(help="Model name (as in its manifest).")],
    cell: Annotated[Optional[str], typer.Option(help="Only cells matching this glob.")] = None,
    validator: Annotated[Optional[str], typer.Option(help="Only this validator.")] = None,
    metric: Annotated[str, typer.Option(help="The metric to follow (glob allowed).")] = "p95_latency_ms",
    runs: Annotated[int, typer.Option(min=1, help="How many of the latest runs.")] = 20,
    store: StoreOption = None,
) -> None:
    """Print a metric's trend over a model's runs: one row per run, one column per cell × validator."""
    from rich.table import Table

    from modelcompat.baseline.promotion import pointers
    from modelcompat.baseline.trends import metric_history

    store_ = _store(store)
    frame = metric_history(store_, model, cell=cell, validator=validator, metric=metric, limit=runs)
    if frame.empty:
        known = sorted(set(store_.runs()["model_name"]))
        _fail_input(InputError(f"no {metric!r} values for model {model!r}"
                               + (f" in cells {cell!r}" if cell else "")
                               + (f" of validator {validator!r}" if validator else ""),
                               fix=f"models in the store: {', '.join(known) or '(none)'}; "
                                   "metrics are named like p95_latency_ms, max_abs_diff, peak_rss_mb"))
    baseline_runs = set(pointers(store_, model).values())
    series = list(dict.fromkeys(zip(frame["cell"], frame["validator"], frame["metric"])))
    shown, hidden = series[:6], len(series) - 6
    run_rows = frame.drop_duplicates("run_id")[["run_id", "started_at", "model_version", "verdict"]]
    values = {(r.run_id, r.cell, r.validator, r.metric): r.value for r in frame.itertuples(index=False)}
    table = Table(title=f"{model}: {metric} over {len(run_rows)} runs (★ baseline)", title_justify="left")
    for col in ("run", "started", "version", "verdict"):
        table.add_column(col, no_wrap=True)
    for c, v, m in shown:
        table.add_column(f"{c}\n{v}" + (f"\n{m}" if m != metric else ""), justify="right")
    previous: dict[tuple[str, str, str], float] = {}
    for r in run_rows.itertuples(index=False):
        cells_out = []
        for key in shown:
            value = values.get((r.run_id, *key))
            if value is None:
                cells_out.append("-")
                continue
            before = previous.get(key)
            delta = f" ({(value - before) / before * 100:+.0f}%)" if before else ""
            style = "red" if before and value > before * 1.1 else "green" if before and value < before * 0.9 else ""
            cells_out.append(f"[{style}]{value:.4g}{delta}[/{style}]" if style else f"{value:.4g}{delta}")
            previous[key] = value
        mark = " ★" if r.run_id in baseline_runs else ""
        table.add_row(r.run_id + mark, f"{r.started_at:%Y-%m-%d %H:%M}", r.model_version, r.verdict or "", *cells_out)
    trend = [_spark([values[(rid, *key)] for rid in run_rows["run_id"] if (rid, *key) in values]) for key in shown]
    table.add_section()
    table.add_row("trend", "", "", "", *trend)
    console.print(table)
    if hidden > 0:
        console.print(f"{hidden} more series not shown; narrow with --cell, --validator or --metric", style="dim")


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on.")],
    format: Annotated[str, typer.Option("--format", "-f", help="html | md | json | junit")] = "md",
    out: Annotated[Optional[Path], typer.Option(help="Write here instead of stdout.")] = None,
    store: StoreOption = None,
) -> None:
    """Render a stored run: HTML (heatmap + trends, self-contained), markdown, JSON summary or JUnit XML."""
    formats = ("html", "md", "json", "junit")
    try:
        if format not in formats:
            raise InputError(f"unknown format {format!r}", field="--format", fix="one of: " + ", ".join(formats))
        from modelcompat.baseline.stored_run import summary_from_store

        store_ = _store(store)
        summary, _ = summary_from_store(store_, run_id)
    except InputError as exc:
        _fail_input(exc)
    if format == "json":
        text = json.dumps(summary, indent=2, default=str) + "\n"
    elif format == "md":
        from modelcompat.render.prefect_artifacts import markdown_summary

        text = markdown_summary(summary)
    elif format == "junit":
        from modelcompat.render.junit import render_junit

        text = render_junit(summary)
    else:
        from modelcompat.baseline.trends import metric_history
        from modelcompat.render.html import KEY_METRICS, render_html

        record = store_.run(run_id)
        hist = metric_history(store_, summary["model"]["name"], until=record.started_at, limit=30)
        hist = hist[hist["metric"].isin(KEY_METRICS)]
        text = render_html(summary, hist)
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    err_console.print(f"{format} report of run {run_id} written to {out}", highlight=False)


def _refuse_remote_registry(registry: Path | None) -> None:
    """The registry commands manage the local folder registry; an MLflow registry is managed in MLflow."""
    uri = settings.registry_uri() or ""
    if registry is None and uri.startswith(("mlflow+http://", "mlflow+https://")):
        _fail_input(InputError("MODELCOMPAT_REGISTRY points at MLflow; these commands manage the local folder registry",
                               field="MODELCOMPAT_REGISTRY",
                               fix="register versions and set aliases in MLflow (its webhook starts the checks), "
                                   "or pass --registry DIR for a local registry"))


@registry_app.command("register")
def registry_register(
    package_dir: Annotated[Path, typer.Argument(help="Model package folder.")],
    registry: Annotated[Optional[Path], typer.Option(help="Registry folder (default: $MODELCOMPAT_REGISTRY or .modelcompat/registry).")] = None,
) -> None:
    """Register a package as a model version and emit `model.version.registered` to Prefect."""
    from modelcompat.model_registry.local import LocalRegistry, emit_registered

    _refuse_remote_registry(registry)
    try:
        entry = LocalRegistry(registry).register(package_dir)
    except InputError as exc:
        _fail_input(exc)
    console.print(f"registered {entry['name']} {entry['version']} ({entry['sha256'][:12]}…)")
    if os.environ.get("PREFECT_API_URL"):
        emit_registered(entry["name"], entry["version"], entry["package"])
        console.print("event model.version.registered emitted")
    else:
        console.print("PREFECT_API_URL is not set: no event emitted (nothing would receive it)", style="yellow")


@registry_app.command("list")
def registry_list(
    registry: Annotated[Optional[Path], typer.Option(help="Registry folder.")] = None,
) -> None:
    """List registered models, their versions, aliases and last verdicts."""
    from rich.table import Table

    from modelcompat.model_registry.local import LocalRegistry

    _refuse_remote_registry(registry)
    reg = LocalRegistry(registry)
    table = Table(title=f"registry {reg.root}", title_justify="left")
    for col in ("model", "version", "aliases", "verdict", "run", "package"):
        table.add_column(col)
    for name in reg.models():
        data = reg.model(name)
        for version, entry in sorted(data["versions"].items(), key=lambda kv: kv[1].get("registered_at", "")):
            aliases = ", ".join(a for a, v in data["aliases"].items() if v == version)
            table.add_row(name, version, aliases, entry.get("verdict") or "-", entry.get("run_id") or "-",
                          entry.get("package", ""))
    console.print(table)


@alias_app.command("set")
def registry_alias_set(
    model_name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    version: Annotated[str, typer.Argument(help="Version the alias points to.")],
    registry: Annotated[Optional[Path], typer.Option(help="Registry folder.")] = None,
) -> None:
    """Point an alias at a version and emit `model.version.alias_set`."""
    from modelcompat.model_registry.local import LocalRegistry, emit_alias_set

    _refuse_remote_registry(registry)
    try:
        LocalRegistry(registry).set_alias(model_name, alias, version)
    except InputError as exc:
        _fail_input(exc)
    console.print(f"{model_name}@{alias} -> {version}")
    if os.environ.get("PREFECT_API_URL"):
        emit_alias_set(model_name, alias, version)


@app.command()
def serve(
    limit: Annotated[Optional[int], typer.Option(help="Most runs executed at once.")] = None,
) -> None:
    """Serve the nightly-matrix, on-model-registered and validate-one deployments (needs PREFECT_API_URL)."""
    if not os.environ.get("PREFECT_API_URL"):
        _fail_input(InputError("PREFECT_API_URL is not set", field="PREFECT_API_URL",
                               fix="start a server (`modelcompat server`) and export "
                                   "PREFECT_API_URL=http://127.0.0.1:4200/api"))
    from modelcompat.orchestration.deployments import serve as serve_deployments

    serve_deployments(limit=limit)


@app.command()
def server(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4200,
    host: Annotated[str, typer.Option(help="Address to bind; the default keeps it on this machine.")] = "127.0.0.1",
) -> None:
    """Start a local Prefect server (UI and API), bound to 127.0.0.1 by default."""
    import subprocess

    prefect = Path(sys.executable).with_name("prefect")
    console.print(f"Prefect UI and API on http://{host}:{port} — export PREFECT_API_URL=http://{host}:{port}/api")
    raise typer.Exit(subprocess.call([str(prefect), "server", "start", "--host", host, "--port", str(port)]))


webhook_app = typer.Typer(no_args_is_help=True, help="Receive MLflow model registry webhooks as Prefect events.")
app.add_typer(webhook_app, name="webhook")


@webhook_app.command("serve")
def webhook_serve(
    host: Annotated[str, typer.Option(help="Address to bind; the default keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Verify MLflow webhook deliveries (HMAC secret from $MODELCOMPAT_WEBHOOK_SECRET) and emit the Prefect events."""
    import logging

    from modelcompat.model_registry import webhook

    if not settings.webhook_secret():
        _fail_input(InputError(f"{webhook.SECRET_ENV} is not set: refusing to accept unsigned webhooks",
                               field=webhook.SECRET_ENV,
                               fix="export the same secret the MLflow webhook was created with"))
    if not os.environ.get("PREFECT_API_URL"):
        _fail_input(InputError("PREFECT_API_URL is not set: the events would reach no server", field="PREFECT_API_URL",
                               fix="export PREFECT_API_URL=http://127.0.0.1:4200/api (see `modelcompat server`)"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(f"MLflow webhook receiver on http://{host}:{port}/webhook — events to {os.environ['PREFECT_API_URL']}")
    webhook.serve(host, port, deliveries_file=settings.home() / "webhook-deliveries.jsonl")


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

