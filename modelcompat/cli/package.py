"""`modelcompat package` (build a model package from model files) and `modelcompat demo` (the built-in one)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelcompat.cli.console import console

if TYPE_CHECKING:
    from modelcompat.model.package import Artifact


def package(
    model_files: Annotated[list[Path], typer.Argument(help="Model file(s): ONNX, TorchScript (.pt), torch.export (.pt2), OpenVINO IR (.xml, its .bin beside it) and/or an ExecuTorch program (.pte) of one model.")],
    payload: Annotated[list[Path], typer.Option(help="Representative inputs (.npz keyed by input name; sequences/maps as in docs/contract.md). Repeat it for more sizes, e.g. batch 8 and batch 1: each is checked.")],
    name: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Model version.")],
    out: Annotated[Path, typer.Option(help="Package folder to create.")],
    reference: Annotated[list[Path] | None, typer.Option(help="Reference outputs (.npz keyed by output name), one per --payload in the same order; computed on the host runtime when omitted.")] = None,
    requirement: Annotated[list[str] | None, typer.Option("--requirement", help="Declared runtime requirement, e.g. 'onnxruntime>=1.17' (repeatable).")] = None,
    semantics: Annotated[list[str] | None, typer.Option("--semantics", help="What an output means, OUTPUT=KIND with KIND one of logits, probabilities, labels, embedding, raw (repeatable): numerical_parity then also grades predictions (docs/contract.md).")] = None,
) -> None:
    """Create a model package: artifacts + sha256, I/O contract, payload, reference outputs."""
    from modelcompat.model.build import build_package
    from modelcompat.scanning.gate import refuse_malicious

    refuse_malicious(model_files)  # scan first: a file that would run code is malicious (exit 1), not unsupported
    pkg = build_package(list(model_files), list(payload), out, name=name, version=version, reference=reference or None,
                        requirements=requirement or [], semantics=_semantics(semantics or []))
    formats = ", ".join(_artifact_summary(a) for a in pkg.manifest.artifacts)
    console.print(f"wrote {pkg.manifest_path}: {pkg.manifest.name} {pkg.manifest.version}: {formats}")


def _semantics(pairs: list[str]) -> dict[str, str]:
    """`--semantics logits=logits` options as {output: kind}; the kinds are checked by the package build."""
    from modelcompat.errors import InputError

    parsed: dict[str, str] = {}
    for pair in pairs:
        output, sep, kind = pair.partition("=")
        if not sep or not output.strip() or not kind.strip():
            raise InputError(f"--semantics {pair!r} is not OUTPUT=KIND", field="semantics",
                             fix="write it as the output's name, '=', and its kind, e.g. --semantics logits=logits")
        parsed[output.strip()] = kind.strip()
    return parsed


def _artifact_summary(artifact: Artifact) -> str:
    """`onnx (1a2b3c4d5e6f…)`, plus the external-data files taken with it: their count and total size."""
    text = f"{artifact.format} ({artifact.sha256[:12]}…)"
    files = artifact.data_files or []
    if files:
        total = sum(f.size for f in files)
        text += f" with {len(files)} external data file{'s' if len(files) != 1 else ''} ({_size(total)})"
    return text


def _size(n: int) -> str:
    """Bytes in decimal units, as `ls -h --si` and download pages show them: 812 B, 46.7 MB, 2.55 GB."""
    if n < 1000:
        return f"{n} B"
    value, unit = float(n), "B"
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.5:  # else it would print as 1e+03 at 3 significant digits
            break
    return f"{value:.3g} {unit}"


def demo(
    out: Annotated[Path | None, typer.Option(help="Where to write the demo package (default: $MODELCOMPAT_HOME/demo).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a current demo package exists.")] = False,
) -> None:
    """Build the built-in demo package from a small torch model (ONNX, TorchScript, torch.export)."""
    from modelcompat.model.demo import build_demo

    pkg = build_demo(out, force=force)
    console.print(f"demo package: {pkg.root}")
