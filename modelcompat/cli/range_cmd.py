"""`modelcompat range MODEL_DIR --runtime onnxruntime`: the window of a runtime's releases the model passes.

Exit codes: 0 a window was found (and no release was lost since the previous stored range) · 1 no release
passes, or the range lost releases (a graded regression) · 2 invalid input, nothing probed · 3 the index
could not be read, or every probe errored.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelcompat import settings
from modelcompat.cli.console import console
from modelcompat.cli.options import MatrixOption, StoreOption, open_store, split_csv
from modelcompat.results.verdict import ExitCode


def range_(
    model_dir: Annotated[Path, typer.Argument(help="Model package folder (made by `modelcompat package`).")],
    runtime: Annotated[str, typer.Option("--runtime", help="Runtime to bisect: onnxruntime (torch and openvino are not supported yet).")],
    backend: Annotated[str | None, typer.Option("--backend", help="Backend id from the matrix (default: its first backend for the runtime, e.g. ort-cpu).")] = None,
    hardware: Annotated[str | None, typer.Option("--hardware", help="Hardware id from the matrix (default: its first cpu hardware).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Oldest release to consider, e.g. 1.16 (default: the oldest installable here).")] = None,
    until: Annotated[str, typer.Option("--until", help="Newest release to consider, e.g. 1.19 (includes 1.19.x), or latest.")] = "latest",
    validators: Annotated[str | None, typer.Option("--validators", help="Comma-separated checks a release must pass (default: loadability,operator_coverage,numerical_parity).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write {runtime, min, max, holes[], boundaries[{release, status, finding}]} (and every probe) here.")] = None,
    matrix: MatrixOption = None,
    store: StoreOption = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Re-read the release list from the index now (default: cached for MODELCOMPAT_RESOLVE_TTL_S).")] = False,
) -> None:
    """Find the releases of a runtime the model works on: bisect the index's releases, verify each boundary,
    sample for holes; each release probed in its own venv; probes and the range stored with the model."""
    from modelcompat.baseline.range_changes import blocking, range_regressions
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.model.package import load_package
    from modelcompat.ranges.search import Window, check_runtime, check_window, find_range, make_target
    from modelcompat.render.range_table import probes_table
    from modelcompat.runtime.releases import releases
    from modelcompat.validators.registry import Registry

    # Every input is checked before the index is asked or anything probed (an InputError: exit 2).
    check_runtime(runtime)
    window = Window(since=since, until=None if until == "latest" else until)
    check_window(window)
    package = load_package(model_dir)
    registry = Registry.discover()
    target = make_target(load_matrix(matrix or settings.default_matrix()), runtime, hardware, backend,
                         split_csv(validators), package, registry)
    the_store = open_store(store)
    listed = releases(target.project, refresh=refresh)

    def show(probe) -> None:
        console.print(f"  probed {target.project} {probe.release}: {probe.status}"
                      + (f" ({probe.finding})" if probe.finding else ""), markup=False, highlight=False, soft_wrap=True)

    with console.status(f"bisecting {target.project} releases…"):
        record, _ = find_range(package, target, listed, window, the_store, registry=registry, on_probe=show)
    console.print(probes_table(record))
    new = sum(1 for p in record.probes if not p["reused"])
    console.print(f"{len(record.releases)} releases in the window; {new} probed now, "
                  f"{len(record.probes) - new} answered by stored probes", markup=False, highlight=False,
                  soft_wrap=True)
    for b in record.boundaries:
        console.print(f"{b['side']} boundary: {b['release']}: {b['finding'] or b['status']} "
                      f"(passes: {b['passing']})", markup=False, highlight=False, soft_wrap=True)
    comparison = range_regressions(the_store, record)
    for change in comparison.regressions:
        console.print(f"regression ({change.severity}): {change.note}", markup=False, highlight=False, soft_wrap=True)
    console.print(record.line(), markup=False, highlight=False, soft_wrap=True)
    if json_out:
        document = {"runtime": record.runtime, "min": record.min, "max": record.max, "holes": record.holes,
                    "boundaries": record.boundaries, **{k: v for k, v in record.to_json().items()
                                                        if k not in ("runtime", "min", "max", "holes", "boundaries")},
                    "regressions": [c.to_json() for c in comparison.regressions]}
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"range written to {json_out}", markup=False, highlight=False, soft_wrap=True)
    if record.probes and all(p["status"] == "error" for p in record.probes):
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(ExitCode.FAIL if not record.found or blocking(comparison) else ExitCode.OK)
