"""`modelcompat package` on models with external data: the files come along hashed, bad locations are refused
with file/field/fix, the package runs through the real harness (host onnxruntime, an older onnxruntime venv,
an fp16 cell converted on the host), and packaging streams the weights (the process never holds them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from modelcompat.errors import ArtifactError
from modelcompat.matrix.cells import BackendSpec, RuntimeSpec
from modelcompat.model.build import build_package
from modelcompat.model.hashing import sha256_file
from modelcompat.model.package import load_package
from support.extdata import corpus_model, external_mlp, relocate
from support.pkgvariants import HOST_ORT, ORT_116
from support.validator_runs import run

BIN = Path(sys.executable).parent
# onnxruntime 1.20 (cached env, keyed by spec): the oldest common release that loads IR 10 / opset 20 dynamo exports.
ORT_120 = HOST_ORT.model_copy(update={"runtime": RuntimeSpec(
    id="ort-1.20", kind="onnxruntime", env="venv", requirements=("onnxruntime==1.20.0",))})
HOST_FP16 = HOST_ORT.model_copy(update={"backend": BackendSpec(
    id="ort-cpu-fp16", runtime="onnxruntime", provider="CPUExecutionProvider", precision="fp16")})
STATIC_AND_RUN = ("integrity", "unsafe_serialization", "loadability", "opset_support", "operator_coverage",
                  "io_contract", "numerical_parity")


def _package(src: Path, payload: Path, out: Path):
    return build_package([src], payload, out, name="ext", version="1")


def test_package_takes_the_data_files_hashed_under_their_names(tmp_path: Path) -> None:
    src, payload = external_mlp(tmp_path / "src", "weights/mlp.bin")
    pkg = _package(src, payload, tmp_path / "pkg")
    (artifact,) = pkg.manifest.artifacts
    (data,) = artifact.data_files
    copied = tmp_path / "pkg" / "weights" / "mlp.bin"
    assert (data.path, data.size, data.sha256) == ("weights/mlp.bin", copied.stat().st_size, sha256_file(copied))
    assert copied.read_bytes() == (tmp_path / "src" / "weights" / "mlp.bin").read_bytes()
    assert "data_files:" in pkg.manifest_path.read_text()
    # The reference came from the packaged model.onnx finding its weights beside it: the source's outputs.
    x = np.load(payload)["x"]
    expected = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with np.load(pkg.resolve(pkg.manifest.reference)) as ref:
        np.testing.assert_allclose(ref["y"], expected, rtol=1e-6)


def test_a_model_without_external_data_writes_the_manifest_it_always_did(demo_package) -> None:
    text = demo_package.manifest_path.read_text()
    assert "data_files" not in text
    assert all(a.data_files is None for a in load_package(demo_package.root).manifest.artifacts)
    assert "data_files" not in json.dumps(demo_package.manifest.model_dump(mode="json"))


def _symlinked(src: Path) -> None:
    outside = src.parent / "elsewhere.bin"
    (src.parent / "model.onnx.data").rename(outside)
    (src.parent / "model.onnx.data").symlink_to(outside)


@pytest.mark.parametrize(("edit", "message"), [
    (_symlinked, "symlink"),
    (lambda src: relocate(src, "../shared/model.onnx.data"), "'..'"),
    (lambda src: relocate(src, str(src.parent.parent / "abs" / "w.bin")), "absolute"),
    (lambda src: (src.parent / "model.onnx.data").unlink(), "not found beside the model"),
    (lambda src: relocate(src, "payload.npz"), "name of a file the package itself holds"),
], ids=["symlink", "dotdot", "absolute", "missing", "reserved-name"])
def test_bad_locations_are_refused_and_leave_nothing(tmp_path: Path, edit, message) -> None:
    src, payload = external_mlp(tmp_path / "models" / "src")
    edit(src)
    parent = tmp_path / "packages"
    parent.mkdir()
    with pytest.raises(ArtifactError, match=message) as exc:
        _package(src, payload, parent / "pkg")
    assert exc.value.file == str(src) and exc.value.field.endswith("external_data.location") and exc.value.fix
    assert list(parent.iterdir()) == []


def test_cli_refusal_is_one_clear_error(tmp_path: Path) -> None:
    src, payload = external_mlp(tmp_path / "models" / "src")
    relocate(src, "../shared/w.bin")
    proc = subprocess.run([str(BIN / "modelcompat"), "package", str(src), "--payload", str(payload), "--name", "x",
                           "--version", "1", "--out", str(tmp_path / "pkg")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert str(src) in proc.stderr and "external_data.location" in proc.stderr and "fix:" in proc.stderr


def test_small_model_runs_on_host_an_old_runtime_and_an_fp16_cell(tmp_path: Path) -> None:
    src, payload = external_mlp(tmp_path / "src")
    pkg = _package(src, payload, tmp_path / "pkg")
    for cell in (HOST_ORT, ORT_116, HOST_FP16):
        reports = run(pkg, cell, STATIC_AND_RUN)
        bad = {v: (r.status.value, [f.code for f in r.findings]) for v, r in reports.items()
               if r.status.value not in ("pass", "warn")}
        assert bad == {}, (cell.id, bad)
        assert reports["numerical_parity"].status.value == "pass" or cell is HOST_FP16, cell.id


def test_corpus_dynamo_export_runs_on_host_and_onnxruntime_1_20(tmp_path: Path) -> None:
    folder = corpus_model("mobilenet_v3_small", tmp_path / "corpus")
    assert (folder / "model.onnx.data").is_file()  # what torch.onnx.export(dynamo=True) writes
    pkg = _package(folder / "model.onnx", folder / "inputs.npz", tmp_path / "pkg")
    assert [d.path for d in pkg.manifest.artifacts[0].data_files] == ["model.onnx.data"]
    for cell in (HOST_ORT, ORT_120):
        reports = run(pkg, cell, STATIC_AND_RUN)
        assert {v: r.status.value for v, r in reports.items()} == dict.fromkeys(STATIC_AND_RUN, "pass"), (
            cell.id, {v: [f.message for f in r.findings] for v, r in reports.items()})


_PACKAGE_RSS = """
import sys
from pathlib import Path
from modelcompat.model.build import build_package
def hwm():
    return int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))) * 1024
def rss():
    return int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS'))) * 1024
import numpy, onnx, onnxruntime  # what packaging imports, before the baseline
before = rss()
build_package([Path(sys.argv[1])], Path(sys.argv[2]), Path(sys.argv[3]), name="big", version="1")
print(hwm() - before)
"""


def test_packaging_streams_the_weights(tmp_path: Path) -> None:
    """A 200 MB data file: the package process's peak RSS grows by far less (copy and hash stream in 4 MiB reads;
    the reference is computed in a probe process)."""
    src, payload = external_mlp(tmp_path / "src", hidden=200 * 2**20 // (4 * 21))  # w1 16xh + w2 hx4: ~200 MB
    size = (tmp_path / "src" / "model.onnx.data").stat().st_size
    assert size > 190 * 2**20
    proc = subprocess.run([sys.executable, "-c", _PACKAGE_RSS, str(src), str(payload), str(tmp_path / "pkg")],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "MODELCOMPAT_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    growth = int(proc.stdout.strip().splitlines()[-1])
    assert growth < 48 * 2**20, f"peak RSS grew by {growth / 2**20:.0f} MiB while packaging {size / 2**20:.0f} MiB"
