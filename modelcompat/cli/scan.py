"""`modelcompat scan PATH...`: the static scan of any model file or folder, with no package and no runtime.

Exit codes (cli/console.py): 0 every file clean or not a model format · 1 a file is malicious or malformed ·
2 a path does not exist. Nothing is ever loaded.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelcompat.cli.console import console
from modelcompat.results.verdict import ExitCode

_STYLE = {"clean": "green", "malicious": "bold red", "malformed": "yellow", "skipped": "dim"}


def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: pickle, torch.save / TorchScript / .pt2 archives, joblib, .npy/.npz, ONNX (with its external data), safetensors, or any zip.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every file's verdict and threats as JSON here ('-': stdout, instead of the table).")] = None,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="Accept one more `module.name` global in pickles (repeatable): your own trusted class. Each is code the loader will import and call.")] = None,
) -> None:
    """Scan model files for code they would run or files they would read when loaded, without loading them."""
    from modelcompat.scanning import Verdict, scan_paths

    results = scan_paths(paths, extra_allowed=allow or [])
    document = {"files": [r.to_json() for r in results],
                "counts": {v.value: sum(r.verdict == v for r in results) for v in Verdict}}
    if json_out is not None and str(json_out) == "-":
        typer.echo(json.dumps(document, indent=2))
    else:
        for result in results:
            verdict = result.verdict.value
            console.print(f"[{_STYLE[verdict]}]{verdict:<9}[/{_STYLE[verdict]}] {result.path} ({result.format})"
                          + (f" - {result.note}" if result.note else ""), highlight=False, soft_wrap=True)
            for threat in result.threats:
                at = f" ({threat.opcode} at byte {threat.offset})" if threat.opcode else ""
                console.print(f"  {threat.kind}: {threat.target or ''}{at} in {threat.where}: {threat.message}",
                              markup=False, highlight=False, soft_wrap=True)
        counts = ", ".join(f"{n} {v}" for v, n in document["counts"].items() if n)
        console.print(f"{len(results)} file{'s' if len(results) != 1 else ''} scanned: {counts or 'none'}",
                      highlight=False)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(document, indent=2) + "\n")
    flagged = any(r.verdict in (Verdict.MALICIOUS, Verdict.MALFORMED) for r in results)
    raise typer.Exit(ExitCode.FAIL if flagged else ExitCode.OK)
