"""`modelcompat demo`: the built-in demo package, a small torch MLP exported to ONNX, TorchScript and pt2.

Built once into $MODELCOMPAT_HOME/demo and reused while the demo code and torch version are unchanged.
"""
from __future__ import annotations

import hashlib
import tempfile
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from modelcompat import settings
from modelcompat.errors import ManifestError
from modelcompat.model.hashing import sha256_file
from modelcompat.model.package import ModelPackage, load_package

# Bump when the demo's content changes in a way the source hash would not show (it usually does).
DEMO_VERSION = "1"
DEMO_NAME = "demo-mlp"
DEMO_PACKAGE_VERSION = "1.0.0"
STAMP_NAME = ".demo-stamp"  # next to modelcompat.yaml: which demo code built this folder


def default_demo_dir() -> Path:
    return settings.home() / "demo"


def demo_stamp() -> str:
    """Identity of the code that builds the demo: DEMO_VERSION, this module's and the model's source, torch."""
    digest = hashlib.sha256(DEMO_VERSION.encode())
    for module in ("demo.py", "torch_models.py"):
        digest.update(Path(__file__).with_name(module).read_bytes())
    try:
        # The exporters' output depends on torch; metadata, not import: a cache hit must stay fast.
        digest.update(metadata.version("torch").encode())
    except metadata.PackageNotFoundError:
        pass
    return digest.hexdigest()[:16]


def build_demo(out: Path | None = None, *, force: bool = False) -> ModelPackage:
    """The demo package at `out` (default $MODELCOMPAT_HOME/demo), built only when missing or stale.

    A folder counts as up to date when its stamp matches this code and the package loads with every
    artifact matching its declared sha256; otherwise (or with `force`) it is rebuilt in place.

    Raises:
        ProbeError: the probe computing the reference outputs crashed (nothing is left half-built).
    """
    out = Path(out) if out is not None else default_demo_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time (parallel tests, workers): the loser of the race gets a cache hit.
    with FileLock(str(out.parent / f".{out.name}.lock")):
        if not force:
            cached = _cached(out)
            if cached is not None:
                return cached
        package = _build(out)
        (out / STAMP_NAME).write_text(demo_stamp() + "\n")
        return package


def _cached(out: Path) -> ModelPackage | None:
    stamp = out / STAMP_NAME
    try:
        if stamp.read_text().strip() != demo_stamp():
            return None
        package = load_package(out)
    except (OSError, ManifestError):
        return None
    for artifact in package.manifest.artifacts:
        if sha256_file(package.resolve(artifact.path)) != artifact.sha256:
            return None  # edited or corrupted by hand: rebuild rather than hand out a broken demo
    if package.manifest.name != DEMO_NAME or len(package.manifest.artifacts) != 3:
        return None
    return package


def _build(out: Path) -> ModelPackage:
    import torch  # deferred: a cache hit must not pay torch's import time

    from modelcompat.model.build import build_package
    from modelcompat.model.torch_models import (
        export_onnx,
        export_pt2,
        export_torchscript,
        make_features,
        make_mlp,
        save_payload,
    )

    model = make_mlp(seed=0)
    features = make_features(n_rows=8, seed=0)
    example = (torch.from_numpy(features),)
    with tempfile.TemporaryDirectory(prefix="modelcompat-demo-") as tmp:
        work = Path(tmp)
        files = [
            # opset 17 with the legacy exporter: loads on onnxruntime 1.16 as well as the newest.
            export_onnx(model, example, work / "demo.onnx", opset=17,
                        input_names=["features"], output_names=["probabilities"]),
            export_torchscript(model, example, work / "demo.torchscript.pt"),
            export_pt2(model, example, work / "demo.pt2", dynamic_batch=True),
        ]
        payload = save_payload(work / "payload.npz", features=features)
        return build_package(
            files, payload, out, name=DEMO_NAME, version=DEMO_PACKAGE_VERSION,
            requirements=["onnxruntime>=1.16"], budgets={"p95_latency_ms": 50},
            semantics={"probabilities": "probabilities"}, overwrite=True,
        )
