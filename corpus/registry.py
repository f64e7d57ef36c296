"""The corpus registry: recipes by name, a build cache keyed by each recipe's hash, and the CLI.

A recipe's key hashes its module's source, the pinned requirements and the key it depends on, so a
change to any of them rebuilds it and nothing else; a hit copies nothing it does not have to.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata as md
import inspect
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
FORMAT = 1  # bump when recipe.json or the cache layout changes: every key changes with it
FAMILIES = ("corpus.vision", "corpus.transformers_models", "corpus.classical", "corpus.quantized")
LIBRARIES = ("torch", "torchvision", "timm", "transformers", "onnx", "onnxruntime", "onnxscript", "onnx-ir",
             "scikit-learn", "skl2onnx", "onnxmltools", "lightgbm", "xgboost", "onnxconverter-common", "numpy")


@dataclass(frozen=True)
class Recipe:
    """One corpus model: `build(out_dir, deps)` writes its files and returns what recipe.json says of it."""

    name: str
    build: Callable[[Path, dict[str, Path]], dict]
    summary: str
    depends: tuple[str, ...] = ()


@dataclass
class Built:
    name: str
    path: Path
    cached: bool
    seconds: float
    files: list[dict] = field(default_factory=list)


_RECIPES: dict[str, Recipe] = {}


def recipe(name: str, summary: str, depends: tuple[str, ...] = ()):
    """Decorator registering a build function under `name`."""
    def register(fn: Callable[[Path, dict[str, Path]], dict]) -> Callable:
        _RECIPES[name] = Recipe(name, fn, summary, depends)
        return fn
    return register


def recipes() -> dict[str, Recipe]:
    for module in FAMILIES:
        importlib.import_module(module)
    return dict(_RECIPES)


def cache_root() -> Path:
    # Read here, not in modelcompat.settings: this runs in .venv-corpus, where modelcompat is not installed.
    default = Path.home() / ".cache" / "modelcompat" / "corpus"
    return Path(os.environ.get("MODELCOMPAT_CORPUS_CACHE") or default)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            found[lib] = md.version(lib)
        except md.PackageNotFoundError:
            found[lib] = "absent"
    return found


def recipe_key(r: Recipe, all_recipes: dict[str, Recipe]) -> str:
    h = hashlib.sha256(f"format={FORMAT}\nname={r.name}\n".encode())
    h.update(inspect.getsource(sys.modules[r.build.__module__]).encode())
    h.update(inspect.getsource(sys.modules[__name__]).encode())  # the helpers below shape every model's files
    h.update(REQUIREMENTS.read_bytes() if REQUIREMENTS.exists() else b"")
    h.update(json.dumps(versions(), sort_keys=True).encode())  # what is installed, should it drift from the pins
    for dep in r.depends:
        h.update(f"\ndep {dep}={recipe_key(all_recipes[dep], all_recipes)}".encode())
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_list(folder: Path) -> list[dict]:
    return [{"path": p.relative_to(folder).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "recipe.json"]


def save_payload(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """`inputs.npz`, loadable with allow_pickle=False: strings are stored as fixed-width unicode arrays."""
    for name, a in arrays.items():
        if a.dtype == object:
            raise TypeError(f"payload {name!r} is an object array; it would need pickle")
    np.savez(folder / "inputs.npz", **arrays)


def onnx_facts(path: Path) -> dict:
    """Opsets and IR version of an ONNX file, read without its external weights."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {"ir_version": m.ir_version, "opset": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
            "inputs": [i.name for i in m.graph.input], "outputs": [o.name for o in m.graph.output]}


def _build_one(r: Recipe, key: str, deps: dict[str, Path], root: Path) -> tuple[Path, bool, float]:
    final = root / f"{r.name}-{key[:16]}"
    if (final / "recipe.json").is_file():
        return final, True, 0.0
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{r.name}-", dir=root))
    start = time.perf_counter()
    try:
        meta = r.build(work, deps)
        seconds = time.perf_counter() - start
        doc = {"name": r.name, "summary": r.summary, "key": key, "versions": versions(),
               "built_seconds": round(seconds, 2), **meta, "files": file_list(work)}
        (work / "recipe.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
        os.replace(work, final)  # atomic: a half-built model is never a hit
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final, False, seconds


def _publish(src: Path, dest: Path) -> None:
    """Copy a cached model to `dest` unless it already holds that very build (then touch nothing)."""
    mine = dest / "recipe.json"
    if mine.is_file() and mine.read_bytes() == (src / "recipe.json").read_bytes():
        return
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def build(names: list[str] | None, out: Path, root: Path | None = None) -> list[Built]:
    """Build (or take from the cache) the named recipes and their dependencies into `out/<name>/`."""
    known = recipes()
    wanted = names or list(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"corpus: unknown model(s) {', '.join(unknown)}; `python -m corpus list` names them")
    root = root or cache_root()
    cached: dict[str, tuple[Path, bool, float]] = {}
    results: list[Built] = []

    def ensure(name: str, publish: bool) -> None:
        if name not in cached:
            r = known[name]
            for dep in r.depends:
                ensure(dep, False)
            deps = {d: cached[d][0] for d in r.depends}
            cached[name] = _build_one(r, recipe_key(r, known), deps, root)
        path, hit, seconds = cached[name]
        if publish:
            _publish(path, out / name)
            files = json.loads((path / "recipe.json").read_text())["files"]
            results.append(Built(name, out / name, hit, seconds, files))

    for name in wanted:
        ensure(name, True)
    return results


def _table(rows: list[Built]) -> str:
    lines = [f"{'name':<24} {'files':>5} {'size':>10} {'seconds':>8}  cache"]
    for b in rows:
        size = sum(f["size"] for f in b.files)
        lines.append(f"{b.name:<24} {len(b.files):>5} {size / 1e6:>8.1f}MB {b.seconds:>8.1f}  "
                     f"{'hit' if b.cached else 'built'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or reuse from the cache) corpus models")
    b.add_argument("--only", default="", help="comma-separated model names (default: all)")
    b.add_argument("--out", type=Path, default=Path(".modelcompat") / "corpus", help="where <name>/ folders go")
    sub.add_parser("list", help="name and describe every model")
    args = parser.parse_args(argv)
    if args.command == "list":
        for r in recipes().values():
            print(f"{r.name:<24} {r.summary}")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or None
    rows = build(names, args.out.absolute())
    print(_table(rows))
    print(f"out: {args.out.absolute()}  cache: {cache_root()}")
    return 0
