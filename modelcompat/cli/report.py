"""`modelcompat history` (a metric's trend over a model's runs) and `modelcompat report` (a stored run rendered)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelcompat.cli.console import console, err_console
from modelcompat.cli.options import StoreOption, open_store
from modelcompat.errors import InputError

FORMATS = ("html", "md", "json", "junit", "sarif")


def history(
    model: Annotated[str, typer.Argument(help="Model name (as in its manifest).")],
    cell: Annotated[str | None, typer.Option(help="Only cells matching this glob.")] = None,
    validator: Annotated[str | None, typer.Option(help="Only this validator.")] = None,
    metric: Annotated[str, typer.Option(help="The metric to follow (glob allowed).")] = "p95_latency_ms",
    runs: Annotated[int, typer.Option(min=1, help="How many of the latest runs.")] = 20,
    store: StoreOption = None,
) -> None:
    """Print a metric's trend over a model's runs: one row per run, one column per cell × validator."""
    from modelcompat.baseline.promotion import pointers
    from modelcompat.baseline.trends import metric_history
    from modelcompat.render.tables import history_table

    store_ = open_store(store)
    frame = metric_history(store_, model, cell=cell, validator=validator, metric=metric, limit=runs)
    if frame.empty:
        known = sorted(set(store_.runs()["model_name"]))
        raise InputError(f"no {metric!r} values for model {model!r}"
                         + (f" in cells {cell!r}" if cell else "")
                         + (f" of validator {validator!r}" if validator else ""),
                         fix=f"models in the store: {', '.join(known) or '(none)'}; "
                             "metrics are named like p95_latency_ms, max_abs_diff, peak_rss_mb")
    table, hidden = history_table(model, metric, frame, set(pointers(store_, model).values()))
    console.print(table)
    if hidden > 0:
        console.print(f"{hidden} more series not shown; narrow with --cell, --validator or --metric", style="dim")


def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on.")],
    format: Annotated[str, typer.Option("--format", "-f", help="html | md | json | junit | sarif")] = "md",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="The run's package folder, for the provenance "
                                               "section (md, html) and the artifacts' locations (sarif); default: "
                                               "found by the run's model sha256 among the demo, registered and "
                                               "`check` packages (none found: reported without them).")] = None,
    store: StoreOption = None,
) -> None:
    """Render a stored run: HTML (heatmap + trends, self-contained), markdown, JSON summary, JUnit XML or SARIF 2.1.0
    (GitHub code scanning: fail -> error, warn -> warning, each result at the artifact checked, with its SHA-256;
    security findings with CWE and CVE ids; artifact URIs relative to the current directory when inside it)."""
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}", field="--format", fix="one of: " + ", ".join(FORMATS))
    from modelcompat.baseline.stored_run import summary_from_store

    store_ = open_store(store)
    summary, _ = summary_from_store(store_, run_id)  # an unknown run: RunNotFoundError, exit 2
    from modelcompat.remediation.records import annotate, stored_fixes

    summary = annotate(summary, stored_fixes(store_, run_id))  # fixes `modelcompat remediate` verified
    from modelcompat.execution.localise_records import stored as stored_localisations
    from modelcompat.render.localisation import annotate as link_localisations

    localisations = stored_localisations(store_, run_id)  # `modelcompat localise` results: linked from parity
    summary = link_localisations(summary, localisations)
    if format == "json":
        text = summary.to_json_text()
    elif format == "md":
        from modelcompat.render.prefect_artifacts import markdown_summary
        from modelcompat.render.provenance import provenance_markdown

        provenance = _provenance(store_.require_run(run_id), model)
        text = markdown_summary(summary) + ("\n" + provenance_markdown(provenance) if provenance else "")
    elif format == "junit":
        from modelcompat.render.junit import render_junit

        text = render_junit(summary)
    elif format == "sarif":
        text = _sarif(store_.require_run(run_id), summary, model)
    else:
        from modelcompat.baseline.trends import metric_history
        from modelcompat.render.html import KEY_METRICS, render_html

        record = store_.require_run(run_id)
        hist = metric_history(store_, summary.model.name, until=record.started_at, limit=30)
        hist = hist[hist["metric"].isin(KEY_METRICS)]
        from modelcompat.ranges.records import latest_ranges

        text = render_html(summary, hist, latest_ranges(store_, summary.model.name), localisations,
                           _provenance(record, model))
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    err_console.print(f"{format} report of run {run_id} written to {out}", highlight=False)


def _package(record: Any, model: Path | None) -> Any:
    """The run's package, or None when it is not found (moved or deleted); a wrong --model is an error."""
    from modelcompat.execution.run_inputs import find_package

    try:
        return find_package(record, model)
    except InputError:
        if model is not None:
            raise  # a --model that is not the run's package is the user's mistake: say so
        return None


def _provenance(record: Any, model: Path | None) -> Any:
    from modelcompat.model.provenance import package_provenance

    package = _package(record, model)
    return package_provenance(package) if package is not None else None


def _sarif(record: Any, summary: Any, model: Path | None) -> str:
    """The run as SARIF: the artifacts located (the files `check` was given, or the package's) when the package is
    found; without it (moved or deleted), the package-relative paths the reports name."""
    from modelcompat.model.provenance import package_provenance
    from modelcompat.render.sarif import locate_artifacts, render_sarif

    package = _package(record, model)
    if package is None:
        return render_sarif(summary, [])
    root = Path.cwd()
    return render_sarif(summary, locate_artifacts(package, root), root=root, provenance=package_provenance(package))
