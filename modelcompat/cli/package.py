"""`modelcompat package` (build a model package from model files) and `modelcompat demo` (the built-in one)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelcompat.cli.console import console


def package(
    model_files: Annotated[list[Path], typer.Argument(help="Model file(s): ONNX, TorchScript (.pt) and/or torch.export (.pt2) of one model.")],
    payload: Annotated[list[Path], typer.Option(help="Representative inputs (.npz keyed by input name; sequences/maps as in docs/contract.md). Repeat it for more sizes, e.g. batch 8 and batch 1: each is checked.")],
    name: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Model version.")],
    out: Annotated[Path, typer.Option(help="Package folder to create.")],
    reference: Annotated[list[Path] | None, typer.Option(help="Reference outputs (.npz keyed by output name), one per --payload in the same order; computed on the host runtime when omitted.")] = None,
    requirement: Annotated[list[str] | None, typer.Option("--requirement", help="Declared runtime requirement, e.g. 'onnxruntime>=1.17' (repeatable).")] = None,
) -> None:
    """Create a model package: artifacts + sha256, I/O contract, payload, reference outputs."""
    from modelcompat.model.build import build_package

    pkg = build_package(list(model_files), list(payload), out, name=name, version=version, reference=reference or None,
                        requirements=requirement or [])
    formats = ", ".join(f"{a.format} ({a.sha256[:12]}…)" for a in pkg.manifest.artifacts)
    console.print(f"wrote {pkg.manifest_path}: {pkg.manifest.name} {pkg.manifest.version}: {formats}")


def demo(
    out: Annotated[Path | None, typer.Option(help="Where to write the demo package (default: $MODELCOMPAT_HOME/demo).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a current demo package exists.")] = False,
) -> None:
    """Build the built-in demo package from a small torch model (ONNX, TorchScript, torch.export)."""
    from modelcompat.model.demo import build_demo

    pkg = build_demo(out, force=force)
    console.print(f"demo package: {pkg.root}")
