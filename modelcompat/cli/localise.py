"""`modelcompat localise`: where a cell's parity failure starts — the first diverging node, its inputs' and
output's error, and the path from it to the outputs it reaches."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from modelcompat.cli.console import console, err_console
from modelcompat.cli.options import StoreOption, open_store
from modelcompat.errors import InputError

def _fmt(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "-"
    if "max_abs" not in stats:
        return stats.get("kind") or ("diverged" if stats.get("diverged") else "same")
    return (f"max abs {stats['max_abs']:.3g}, mean abs {stats['mean_abs']:.3g}, max rel {stats['max_rel']:.3g}, "
            f"cosine {stats['cosine']:.6f}" + (f", {stats['non_finite']} NaN/Inf" if stats.get("non_finite") else "")
            + (" DIVERGED" if stats.get("diverged") else ""))


def print_localisation(doc: dict[str, Any]) -> None:
    """The result as a few lines: the node, its inputs and outputs, the path to each output."""
    console.print(f"{doc['cell']} against {doc['against']}: {doc['nodes_total']} nodes, {doc['tensors_compared']} "
                  f"intermediates compared in {doc['runs_per_side']} runs per side (batch {doc['batch']})",
                  highlight=False, soft_wrap=True)
    if not doc["found"]:
        console.print(doc.get("note", "no diverging node found"), highlight=False, soft_wrap=True)
        return
    node = doc["node"]
    console.print(f"first diverging node: {node['name']} ({node['domain']}::{node['op_type']})", highlight=False)
    for name, stats in node["outputs"].items():
        console.print(f"  output {name}: {_fmt(stats)}", highlight=False, soft_wrap=True)
    for name, stats in node["inputs"].items():
        console.print(f"  input  {name}: {_fmt(stats)}", highlight=False, soft_wrap=True)
    console.print(f"  inputs already diverged: {'yes' if node['inputs_diverged'] else 'no'}", highlight=False)
    for output, steps in doc.get("paths", {}).items():
        console.print(f"path to output {output}: " + " -> ".join(s["node"] for s in steps), highlight=False,
                      soft_wrap=True)
    reduced = doc.get("reduce")
    if reduced and "nodes" in reduced:
        console.print(f"reduced to {len(reduced['nodes'])} node(s) ({', '.join(reduced['nodes'])}) failing with "
                      f"{reduced['code']}; smallest passing neighbour: {reduced['passing_nodes'] or '-'}; "
                      f"repro bundle: {reduced['out']} (python repro.py)", highlight=False, soft_wrap=True)
    elif reduced:
        console.print(reduced["note"], highlight=False, soft_wrap=True)


def localise(
    run_id: Annotated[str, typer.Argument(help="The stored run whose parity failure to localise.")],
    cell: Annotated[str, typer.Option("--cell", help="The cell whose numerical_parity failed, or whose "
                                      "operator_coverage named nodes without a kernel (runtime/hardware/backend).")],
    against: Annotated[str, typer.Option("--against", help="Another cell of the run, or `reference`: the package's "
                                         "ONNX model at fp32 on the host's onnxruntime (CPU).")] = "reference",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here as JSON.")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Intermediates marked per run: peak memory is the "
                                       "graph outputs plus this many tensors per side.")] = 16,
    model: Annotated[Path | None, typer.Option("--model", help="The run's package folder (default: found by the "
                                               "run's model sha256 among the demo, registered and `check` "
                                               "packages).")] = None,
    matrix: Annotated[Path | None, typer.Option("--matrix", help="The run's matrix (default: the path the run "
                                                "recorded).")] = None,
    reduce: Annotated[bool, typer.Option("--reduce", help="Shrink to a minimal subgraph that still fails with the same "
                                         "finding code and write a repro bundle to --out.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="(--reduce) the repro bundle's folder: model.onnx, "
                                             "test_data_set_0/, requirements.lock, repro.py, passing/.")] = None,
    store: StoreOption = None,
) -> None:
    """Find the first node, in topological order, whose output diverges beyond the cell's tolerance between the
    cell and the other side, each run in its own runtime environment's probe.

    Intermediates are compared a batch at a time (never all marked at once). Prints the node, its op and domain,
    its inputs' and outputs' error (max/mean abs, max rel, cosine), whether its inputs already diverged and the
    path to the outputs it reaches; the result is also kept in the store, where `modelcompat report` links it.

    A cell whose operator_coverage failed with nodes without a kernel (and whose parity did not fail) lists
    every such kernel signature and its nodes, asked one node at a time on the cell's runtime; with --reduce,
    each gets a one-node repro bundle in its own folder under --out.
    Exit 0: localised (or nothing diverges on this payload, said so); 2: bad input; 3: a side could not run.
    """
    from modelcompat.execution.localise import REFERENCE, cell_side, reference_side
    from modelcompat.execution.localise import localise as run_localise
    from modelcompat.execution.localise_records import publish
    from modelcompat.execution.run_inputs import failing_parity, find_package, missing_kernels, run_cell, run_cells
    from modelcompat import settings
    from modelcompat.execution.harness import UNTIMED_WAIT_S
    from modelcompat.files.atomic import write_text
    from modelcompat.files.timing_lock import shared_timing

    if reduce and out is None:
        raise InputError("--reduce needs a folder for the repro bundle", field="--out", fix="add --out DIR")
    if out is not None and not reduce:
        raise InputError("--out is where --reduce writes its bundle", field="--out", fix="add --reduce, or drop --out")
    store_ = open_store(store)
    record = store_.require_run(run_id)  # an unknown run: RunNotFoundError, exit 2
    reports = store_.load_reports(run_id)
    parity = {r.cell: r for r in reports if r.validator == "numerical_parity"}.get(cell)
    kernels = missing_kernels(reports, cell) if parity is None or parity.status.value != "fail" else None
    if kernels is None:
        failing_parity(reports, run_id, cell)
    cells = run_cells(record, matrix)
    left_cell = run_cell(cells, cell, "--cell")
    right_cell = None if against == REFERENCE else run_cell(cells, against, "--against")
    package = find_package(record, model)
    if kernels is not None:  # no parity failure to localise: the nodes without a kernel, each its own repro
        _kernel_mode(run_id, left_cell, package, out, json_path)
        return
    # Untimed work like any check: held shared, so no latency check of a run on this machine measures beside it.
    with shared_timing(settings.timing_lock_path(), f"localise {cell}", UNTIMED_WAIT_S), \
            tempfile.TemporaryDirectory(prefix="modelcompat-localise-") as tmp:
        work = Path(tmp)
        left = cell_side(left_cell, package, work)
        right = reference_side(package) if right_cell is None else cell_side(right_cell, package, work)
        doc = run_localise(package, left, right, work / "scan", batch=batch)
        if reduce and out is not None:
            doc["reduce"] = _reduce(package, left, right, doc, work / "reduce", out)
    doc["run_id"] = run_id
    doc["stored_at"] = publish(store_, run_id, doc)  # `modelcompat report RUN_ID` links it
    print_localisation(doc)
    if json_path is not None:
        write_text(json_path, json.dumps(doc, indent=2))
        err_console.print(f"localisation written to {json_path}", highlight=False)


def _reduce(package: Any, left: Any, right: Any, doc: dict[str, Any], work: Path, out: Path) -> dict[str, Any]:
    from modelcompat.execution.reduce import finding_code
    from modelcompat.execution.reduce import reduce as run_reduce
    from modelcompat.execution.repro_bundle import write_bundle

    if not doc["found"]:
        return {"note": "nothing was localised, so nothing to reduce"}
    target = finding_code(doc["node"]["outputs"])
    result = run_reduce(package, left, right, doc["node"]["name"], target, work)
    if result["failing"] is None:
        return {"note": f"no subgraph ending at {doc['node']['name']}, fed the other side's values, fails with "
                        f"{target}: the divergence needs the graph around it", "steps": result["steps"]}
    return write_bundle(out, result["failing"], result["passing"], left, right, target,
                        {"runs": result["runs"], "steps": result["steps"], "target": target})



def _kernel_mode(run_id: str, cell: Any, package: Any, out: Path | None, json_path: Path | None) -> None:
    """The cell's operator_coverage named nodes without a kernel: each is already minimal at one node; with
    --reduce, each gets a repro bundle under --out (execution/kernel_repro.py)."""
    from modelcompat import settings
    from modelcompat.execution.harness import UNTIMED_WAIT_S
    from modelcompat.execution.kernel_repro import kernel_bundles
    from modelcompat.execution.localise import cell_side
    from modelcompat.files.atomic import write_text
    from modelcompat.files.timing_lock import shared_timing

    with shared_timing(settings.timing_lock_path(), f"localise {cell.id}", UNTIMED_WAIT_S), \
            tempfile.TemporaryDirectory(prefix="modelcompat-localise-") as tmp:
        work = Path(tmp)
        doc = kernel_bundles(cell_side(cell, package, work), out or work / "bundles", work / "kernels")
    doc["run_id"] = run_id
    console.print(f"{cell.id}: {len(doc['missing'])} kernel signature(s) of {doc['signatures']} missing on "
                  f"{doc['runtime_version']} ({doc['nodes_total']} nodes)", highlight=False, soft_wrap=True)
    for item in doc["missing"]:
        where = f"; repro bundle: {item['out']} (python repro.py)" if out is not None else ""
        console.print(f"  {item['domain']}::{item['op_type']}({item['opset']}) [{', '.join(item['input_types'])}] at "
                      f"{', '.join(item['nodes'])}{where}", highlight=False, soft_wrap=True)
    if out is None:
        for item in doc["missing"]:
            item.pop("out")
    if json_path is not None:
        write_text(json_path, json.dumps(doc, indent=2))
        err_console.print(f"localisation written to {json_path}", highlight=False)
