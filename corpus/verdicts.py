"""The corpus through the product: every model `modelcompat check`ed on a matrix, and each onnxruntime CPU cell's
verdict compared with a direct `onnxruntime.InferenceSession(path).run(...)` in that cell's own venv.

Runs in the product's venv (.venv), not .venv-corpus: `python -m corpus.verdicts [--matrix nightly]` writes the
verdict table to docs/corpus.md (`make corpus`). The test suite uses the same functions on the default matrix.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CORPUS_PYTHON = REPO / ".venv-corpus" / "bin" / "python"
COMPARED = ("integrity", "loadability", "io_contract", "numerical_parity")  # what the comparison needs

# Run by a cell's interpreter (onnxruntime and numpy only): load, run the payload, save outputs flattened
# to arrays under `output/index/key` paths (sequences and maps as the reference's flattening below).
DIRECT_SCRIPT = r"""
import json, sys
import numpy as np
import onnxruntime as ort
model, payload, out, optimization = sys.argv[1:5]
feeds = dict(np.load(payload, allow_pickle=False))
options = ort.SessionOptions()
if optimization == "disable":
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
try:
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
except Exception as exc:
    print(json.dumps({"loaded": False, "ran": False, "error": f"{type(exc).__name__}: {exc}"[:3000],
                      "version": ort.__version__}))
    sys.exit(0)
try:
    outputs = session.run(None, feeds)
except Exception as exc:
    print(json.dumps({"loaded": True, "ran": False, "error": f"{type(exc).__name__}: {exc}"[:3000],
                      "version": ort.__version__}))
    sys.exit(0)
flat = {}
def walk(key, value):
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            walk(f"{key}/{i}", v)
    elif isinstance(value, dict):
        for k in sorted(value):
            walk(f"{key}/{k}", value[k])
    else:
        arr = np.asarray(value)
        flat[key] = arr.astype(str) if arr.dtype.kind == "O" else arr
for meta, value in zip(session.get_outputs(), outputs):
    walk(meta.name, value)
np.savez(out, **flat)
print(json.dumps({"loaded": True, "ran": True, "error": None, "version": ort.__version__}))
"""


@dataclass
class CellVerdict:
    """One (model, cell): the product's statuses and main finding, the direct run's, and whether they agree."""

    cell: str
    product: dict[str, str]  # validator -> status
    finding: str  # the main finding: code and the start of its message ('' when none)
    direct: str | None = None  # loads+close | loads+differs | loads+run-fails | no-load: <error> | None (not compared)
    agree: bool | None = None
    why: str = ""


@dataclass
class ModelVerdict:
    name: str
    verdict: str
    seconds: float
    cells: list[CellVerdict] = field(default_factory=list)
    reference: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def build_corpus(out: Path, only: list[str] | None = None) -> dict[str, Path]:
    """Build (or take from the machine's cache) the corpus models into `out`; name -> folder."""
    if not CORPUS_PYTHON.exists():
        raise RuntimeError(f"{CORPUS_PYTHON} is missing: run `make corpus-env` (it is part of `make test`)")
    args = [str(CORPUS_PYTHON), "-m", "corpus", "build", "--out", str(out)] + (["--only", ",".join(only)] if only else [])
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=3600, check=False,
                          env={**os.environ, "PYTHONPATH": ""})
    if proc.returncode != 0:
        raise RuntimeError(f"corpus build failed:\n{proc.stderr[-3000:]}")
    return {p.name: p for p in sorted(out.iterdir()) if (p / "recipe.json").is_file() and (not only or p.name in only)}


def model_files(folder: Path) -> list[Path]:
    """The exported files `check` takes: model.onnx (its .data follows it), else the pt2 and TorchScript files."""
    if (folder / "model.onnx").is_file():
        return [folder / "model.onnx"]
    return sorted(p for p in folder.iterdir() if p.name.startswith("model.") and p.suffix in (".pt2", ".pt"))


def check_model(name: str, folder: Path, matrix: Path, home: Path, validators: tuple[str, ...] | None) -> ModelVerdict:
    """`modelcompat check` the model's files on `matrix`; the summary (with its `check` object) and the time."""
    summary_path = home / f"{name}.summary.json"
    args = [sys.executable, "-m", "modelcompat.cli", "check", *map(str, model_files(folder)), "--matrix", str(matrix),
            "--json", str(summary_path)] + (["--validators", ",".join(validators)] if validators else [])
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False,
                          env={**os.environ, "MODELCOMPAT_HOME": str(home), "COLUMNS": "200"})
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1) or not summary_path.is_file():
        raise RuntimeError(f"modelcompat check {name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    summary = json.loads(summary_path.read_text())
    result = ModelVerdict(name, summary["verdict"], seconds, reference=summary["check"]["reference_runtime"],
                          summary=summary)
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for report in summary["reports"]:
        by_cell.setdefault(report["cell"], []).append(report)
    for cell, reports in by_cell.items():
        result.cells.append(CellVerdict(cell, {r["validator"]: r["status"] for r in reports}, _main_finding(reports)))
    return result


def _main_finding(reports: list[dict[str, Any]]) -> str:
    """The root cause of a cell: the first fail's (then error's, then warn's) first finding."""
    for status in ("fail", "error", "warn"):
        for report in reports:
            if report["status"] == status and report["findings"]:
                f = report["findings"][0]
                return f"{f['code']}: {' '.join(f['message'].split())}"
    return ""


def cell_pythons(matrix: Path) -> dict[str, tuple[Path, str]]:
    """Cell id -> (the interpreter the product provisioned for it, its graph optimisation level), for the
    onnxruntime cells on CPU at fp32: the ones a direct run on this machine can reproduce."""
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.runtime.environments import existing_env

    found: dict[str, tuple[Path, str]] = {}
    for cell in load_matrix(matrix).select(None):
        if (cell.runtime.kind != "onnxruntime" or cell.hardware.kind != "cpu" or cell.backend.precision != "fp32"
                or cell.backend.provider != "CPUExecutionProvider"):  # the direct run uses the CPU provider
            continue
        env = existing_env(cell.runtime)
        if env is not None:
            found[cell.id] = (env.python, cell.backend.graph_optimization)
    return found


def direct_run(python: Path, package: Path, optimization: str, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load and run the package's model.onnx on its payload with `python`'s onnxruntime: (status, outputs)."""
    out = work / "direct.npz"
    proc = subprocess.run([str(python), "-c", DIRECT_SCRIPT, str(package / "model.onnx"), str(package / "payload.npz"),
                           str(out), optimization], capture_output=True, text=True, timeout=900, check=False,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if proc.returncode != 0:
        raise RuntimeError(f"the direct run under {python} crashed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    outputs = dict(np.load(out, allow_pickle=False)) if status["ran"] else {}
    return status, outputs


def flatten(values: dict[str, Any]) -> dict[str, np.ndarray]:
    """The reference flattened as the direct script flattens outputs (`name/index/key`)."""
    flat: dict[str, np.ndarray] = {}

    def walk(key: str, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{key}/{i}", v)
        elif isinstance(value, dict):
            for k in sorted(value):
                walk(f"{key}/{k}", value[k])
        else:
            flat[key] = np.asarray(value)
    for name, value in values.items():
        walk(name, value)
    return flat


def within_tolerance(outputs: dict[str, np.ndarray], package: Path) -> tuple[bool, str]:
    """Direct outputs against the package's reference with the manifest's per-output atol/rtol, raised to the
    documented floor of the output's precision (a float16 output is compared at fp16's 1e-2, docs/contract.md)."""
    from modelcompat.model.package import load_package
    from modelcompat.model.values import load_values
    from modelcompat.validators.numerical_parity import effective_precision, tolerance_for

    pkg = load_package(package)
    expected = flatten(load_values(pkg.resolve(str(pkg.manifest.reference))))
    if set(outputs) != set(expected):
        return False, f"output keys differ: {sorted(set(outputs) ^ set(expected))[:5]}"
    for key, want in expected.items():
        have = outputs[key]
        tol, _ = tolerance_for(pkg.manifest, key.split("/")[0], effective_precision("fp32", want.dtype.name))
        if have.shape != want.shape:
            return False, f"{key}: shape {have.shape} vs {want.shape}"
        if want.dtype.kind in "fc":
            a, b = have.astype(np.float64), want.astype(np.float64)
            if not np.allclose(a, b, atol=tol.atol, rtol=tol.rtol, equal_nan=True):
                return False, f"{key}: max abs diff {np.nanmax(np.abs(a - b)):.3g} (atol {tol.atol:g}, rtol {tol.rtol:g})"
        elif not np.array_equal(have, want):
            return False, f"{key}: values differ"
    return True, ""


def compare(result: ModelVerdict, pythons: dict[str, tuple[Path, str]], work: Path) -> None:
    """Fill each comparable cell's direct verdict and whether the product agrees with it."""
    package = Path(result.summary["check"]["package"])
    has_reference = result.summary["check"]["reference"] is not None
    for cell in result.cells:
        if cell.cell not in pythons or not (package / "model.onnx").is_file():
            continue
        python, optimization = pythons[cell.cell]
        status, outputs = direct_run(python, package, optimization, work)
        load, parity = cell.product.get("loadability"), cell.product.get("numerical_parity")
        if not status["loaded"]:
            cell.direct = f"no-load: {' '.join(status['error'].split())}"
            cell.agree, cell.why = load == "fail" and parity in (None, "skipped"), _finding_matches(cell, status["error"])
            cell.agree = cell.agree and not cell.why
        elif not status["ran"]:
            cell.direct = f"loads+run-fails: {' '.join(status['error'].split())}"
            cell.agree = load == "pass" and "fail" in (parity, cell.product.get("io_contract"))
        elif not has_reference:
            cell.direct, cell.agree = "loads (no reference)", load == "pass" and parity in (None, "skipped")
        else:
            close, detail = within_tolerance(outputs, package)
            cell.direct = "loads+close" if close else f"loads+differs: {detail}"
            cell.agree = load == "pass" and (parity in (None, "pass") if close else parity in ("warn", "fail"))
        if not cell.agree and not cell.why:
            cell.why = f"product loadability={load} numerical_parity={parity}; direct {cell.direct}"


def _finding_matches(cell: CellVerdict, error: str) -> str:
    """'' when the product's main finding names the cause the direct run met, else what is missing."""
    expected = ("ir_version" if "IR version" in error else "locale" if "locale" in error
                else "opset" if "opset" in error.lower() else None)
    if expected is None or expected in cell.finding.replace("en_US", "locale"):
        return ""
    return f"the direct run failed on {expected} but the product's finding is {cell.finding!r}"


def markdown(results: list[ModelVerdict], command: str, matrix: Path, wall_s: float) -> str:
    """docs/corpus.md: the model × cell verdict table with each cell's main finding and the direct agreement."""
    compared = [c for r in results for c in r.cells if c.agree is not None]
    agreed = sum(bool(c.agree) for c in compared)
    lines = [
        "# Corpus verdicts", "",
        (f"Generated by `{command}` on {dt.date.today().isoformat()} ({wall_s:.0f} s wall time) with matrix "
        f"`{matrix.relative_to(REPO) if matrix.is_relative_to(REPO) else matrix}`. Do not edit by hand."), "",
        ("Each corpus model (corpus/, built in code with random weights) is checked with `modelcompat check` "
        "(inputs synthesised from the model, the reference computed by the host runtime: self-consistency, "
        "not ground truth). For every onnxruntime CPU fp32 cell the model is also loaded and run directly "
        "with that cell's onnxruntime (`InferenceSession(path).run`) and compared with the reference within "
        "the manifest tolerances; *agrees* says whether the product's loadability and parity verdicts match."), "",
        f"Agreement: {agreed}/{len(compared)} compared cells"
        + (f" ({100 * agreed / len(compared):.0f} %)" if compared else "") + "; "
        f"reports with status `error`: {sum(s == 'error' for r in results for c in r.cells for s in c.product.values())}.",
        "", "| model | verdict | cell | loadability | numerical_parity | main finding | direct run | agrees |",
        "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for c in r.cells:
            if all(s == "skipped" for s in c.product.values()) and c.direct is None:
                continue  # a cell with no artifact or hardware for this model (listed in the summary JSON)
            agree = "" if c.agree is None else "yes" if c.agree else f"**no**: {c.why}"
            lines.append(f"| {r.name} | {r.verdict} | `{c.cell}` | {c.product.get('loadability', '')} | "
                         f"{c.product.get('numerical_parity', '')} | {_cell(c.finding)} | {_cell(c.direct or '')} | "
                         f"{_cell(agree)} |")
    lines += ["", "| model | seconds | reference |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.seconds:.1f} | {r.reference or 'none (the host refuses the model)'} |" for r in results]
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 110) -> str:
    """A table cell: the head (finding code, direct outcome) and the tail, where onnxruntime says the cause."""
    if len(text) > limit:
        head = text.split(": ")[0]
        text = f"{head}: …{text[-(limit - len(head)):]}"
    return text.replace("|", "\\|").replace("\n", " ")


def run_corpus(matrix: Path, validators: tuple[str, ...] | None, only: list[str] | None = None) -> list[ModelVerdict]:
    with tempfile.TemporaryDirectory(prefix="modelcompat-corpus-") as tmp:
        root = Path(tmp)
        models = build_corpus(root / "models", only)
        results = []
        for name, folder in models.items():
            result = check_model(name, folder, matrix, root / "home", validators)
            compare(result, cell_pythons(matrix), root)
            results.append(result)
            print(f"{name:22} {result.verdict:6} {result.seconds:6.1f} s", file=sys.stderr, flush=True)
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.verdicts", description=__doc__)
    parser.add_argument("--matrix", default="nightly", help="a matrix name under matrices/ or a YAML path")
    parser.add_argument("--out", default=str(REPO / "docs" / "corpus.md"))
    parser.add_argument("--only", default=None, help="comma-separated model names")
    parser.add_argument("--validators", default=None, help="comma-separated (default: all)")
    args = parser.parse_args(argv)
    matrix = Path(args.matrix) if args.matrix.endswith((".yaml", ".yml")) else REPO / "matrices" / f"{args.matrix}.yaml"
    start = time.perf_counter()
    results = run_corpus(matrix, tuple(args.validators.split(",")) if args.validators else None,
                         args.only.split(",") if args.only else None)
    command = "make corpus" if args.matrix == "nightly" and not args.only and not args.validators else \
        "python -m corpus.verdicts " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(args.out).write_text(markdown(results, command, matrix, time.perf_counter() - start))
    print(f"wrote {args.out}", file=sys.stderr)
    bad = [c for r in results for c in r.cells if c.agree is False]
    errors = [c for r in results for c in r.cells if "error" in c.product.values()]
    return 1 if bad or errors else 0


if __name__ == "__main__":
    sys.exit(main())
