"""`python -m benchmarks [--quick] [--only NAME,...] [--results PATH] [--doc PATH]`."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import (
    BENCHMARK_MODULES,
    NOT_COVERED,
    REPO_ROOT,
    Context,
    NotAvailable,
    loadavg,
)

PACKAGES = ["modelcompat", "prefect", "prefect-dask", "dask", "distributed", "onnxruntime", "numpy", "pandas",
            "pyarrow", "torch", "pydantic"]


def machine_info() -> dict[str, Any]:
    cpu_model = None
    mem_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu_count": os.cpu_count(), "cpu_model": cpu_model, "memory_gib": mem_gib,
            "python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "loadavg": loadavg()}


def _command(argv: list[str]) -> str:
    exe = Path(sys.executable)
    try:
        exe_text = "./" + str(exe.relative_to(REPO_ROOT)) if exe.is_relative_to(REPO_ROOT) else exe.name
    except ValueError:
        exe_text = exe.name
    if exe_text.startswith("./.venv"):
        exe_text = exe_text[2:]
    return " ".join([exe_text, "-m", "benchmarks", *map(shlex.quote, argv)])


def _fmt(value: float) -> str:
    from benchmarks.render import _num

    return _num(value)


def print_result(name: str, entry: dict[str, Any]) -> None:
    from benchmarks.render import ratio_text

    if entry["status"] == "not_available":
        print(f"[{name}] not available yet: {entry['reason']}", flush=True)
        return
    if entry["status"] == "error":
        print(f"[{name}] FAILED: {entry['error']}", flush=True)
        return
    print(f"[{name}] {entry['elapsed_s']:.0f} s, load {entry['loadavg_before']} -> {entry['loadavg_after']}")
    width = max(len(f["name"]) for f in entry["figures"])
    awidth = max(len(f["anchor_name"]) for f in entry["figures"])
    for f in entry["figures"]:
        target = f"   target {f['target']}" if f.get("target") else ""
        print(f"  {f['name']:<{width}}  {_fmt(f['value']):>9} {f['unit']:<5} | "
              f"{f['anchor_name']:<{awidth}}  {_fmt(f['anchor_value']):>9} {f['unit']:<5} | "
              f"ratio {ratio_text(f['ratio']):>8}{target}")
    print(f"  {entry['interpretation']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test, not figures to quote)")
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHMARK_MODULES)}")
    parser.add_argument("--results", type=Path, help="results JSON (default benchmarks/results.json, "
                        "benchmarks/results.quick.json with --quick); entries are merged by benchmark")
    parser.add_argument("--doc", type=Path, help="markdown to render (default docs/benchmarks.md; none with --quick)")
    parser.add_argument("--render-only", action="store_true", help="re-render the doc from the results JSON, run nothing")
    args = parser.parse_args(argv)

    names = BENCHMARK_MODULES
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARK_MODULES]
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARK_MODULES}")
    results_path = args.results or (REPO_ROOT / "benchmarks" / ("results.quick.json" if args.quick else "results.json"))
    doc_path = args.doc or (None if args.quick else REPO_ROOT / "docs" / "benchmarks.md")

    if args.render_only:
        from benchmarks.render import render

        doc_path = args.doc or REPO_ROOT / "docs" / "benchmarks.md"
        doc_path.write_text(render(json.loads(results_path.read_text()), BENCHMARK_MODULES))
        print(f"doc: {doc_path}")
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="modelcompat-bench-"))
    # Before Prefect is imported anywhere: its state, and the product's, go to a scratch folder
    # (the isolated-runtime venv cache stays shared: it is keyed by spec and slow to rebuild).
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect-home"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Dask's per-worker start/stop INFO lines drown the figures (workers inherit this); warnings still show.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    os.environ["MODELCOMPAT_HOME"] = str(workdir / "mc-home")
    os.environ.pop("MODELCOMPAT_STORE", None)

    try:
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
    except ValueError:
        results = {}
    results.setdefault("benchmarks", {})
    results["machine"] = machine_info()
    command = _command(argv)
    print(f"benchmarks: {', '.join(names)} on {results['machine']['cpu_count']} CPUs, "
          f"load average {results['machine']['loadavg']}{' (quick sizes)' if args.quick else ''}", flush=True)

    ctx = Context(quick=args.quick, workdir=workdir)
    failed = False
    try:
        for name in names:
            module = importlib.import_module(f"benchmarks.{name}")
            entry: dict[str, Any] = {"title": module.TITLE, "description": module.DESCRIPTION, "command": command,
                                     "quick": args.quick, "loadavg_before": loadavg(),
                                     "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            print(f"[{name}] running ...", flush=True)
            t0 = time.perf_counter()
            try:
                entry.update(module.run(ctx))
            except NotAvailable as exc:
                entry.update(status="not_available", reason=str(exc))
            except Exception as exc:  # one broken benchmark must not lose the others' figures
                failed = True
                entry.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                traceback.print_exc()
            entry["elapsed_s"] = time.perf_counter() - t0
            entry["loadavg_after"] = loadavg()
            results["benchmarks"][name] = entry
            print_result(name, entry)
            # Written after every benchmark: an interrupted session keeps what it measured.
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    finally:
        ctx.close()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)

    for name, why in NOT_COVERED.items():
        print(f"[{name}] not available yet: {why}")
    results["machine"]["loadavg_end"] = loadavg()
    results["not_covered"] = NOT_COVERED
    results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {results_path}")
    if doc_path is not None:
        from benchmarks.render import render

        doc_path.parent.mkdir(parents=True, exist_ok=True)
        doc_path.write_text(render(results, BENCHMARK_MODULES))
        print(f"doc: {doc_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
