"""`integrity` through the real harness: the declared sha256 against the artifact's bytes, with no probe."""
from __future__ import annotations

import os

import pytest

from modelcompat.model.build import build_package
from modelcompat.validators.integrity import Integrity
from support.extdata import external_mlp
from support.pkgvariants import HOST_ORT, variant
from support.validator_runs import codes, run


def _append_byte(folder, manifest) -> None:
    path = folder / "model.onnx"
    path.write_bytes(path.read_bytes() + b"\x00")


def test_integrity_passes_the_demo_and_catches_one_changed_byte(demo_package, tmp_path) -> None:
    assert Integrity.needs_probe is False and not Integrity.gate
    good = run(demo_package, HOST_ORT, ("integrity",))["integrity"]
    assert good.status.value == "pass" and good.metrics["artifact_size_bytes"] > 0
    assert good.runtime_version is None  # no runtime was started for it
    package = variant(demo_package, tmp_path / "pkg", _append_byte)
    bad = run(package, HOST_ORT, ("integrity",))["integrity"]
    assert bad.status.value == "fail" and codes(bad) == {"integrity.sha256_mismatch"}
    (finding,) = bad.findings
    assert finding.expected == package.artifact("onnx").sha256 and finding.observed != finding.expected


# --- external data: every file of the artifact is verified -----------------------------------------------------

@pytest.fixture(scope="module")
def ext_package(tmp_path_factory: pytest.TempPathFactory):
    """A package whose ONNX model keeps its weights in weights/mlp.bin."""
    root = tmp_path_factory.mktemp("ext")
    src, payload = external_mlp(root / "src", "weights/mlp.bin")
    return build_package([src], payload, root / "pkg", name="ext", version="1")


def _flip_byte(folder, manifest) -> None:
    path = folder / "weights" / "mlp.bin"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(folder, manifest) -> None:
    os.truncate(folder / "weights" / "mlp.bin", 64)


def _remove(folder, manifest) -> None:
    (folder / "weights" / "mlp.bin").unlink()


def _symlink_outside(folder, manifest) -> None:
    outside = folder.parent / f"{folder.name}-stolen.bin"
    (folder / "weights" / "mlp.bin").rename(outside)
    (folder / "weights" / "mlp.bin").symlink_to(outside)


def test_integrity_passes_every_data_file(ext_package) -> None:
    report = run(ext_package, HOST_ORT, ("integrity",))["integrity"]
    (data,) = ext_package.manifest.artifacts[0].data_files
    assert report.status.value == "pass" and report.metrics["data_files"] == 1
    assert report.metrics["data_size_bytes"] == data.size


@pytest.mark.parametrize(("edit", "code", "words"), [
    (_flip_byte, "integrity.data_file_mismatch", "does not match the sha256"),
    (_truncate, "integrity.data_file_mismatch", "(truncated)"),
    (_remove, "integrity.data_file_missing", "is missing"),
    (_symlink_outside, "integrity.data_file_outside", "outside the package folder"),
], ids=["modified", "truncated", "missing", "symlink-outside"])
def test_a_bad_data_file_fails_integrity_naming_it(ext_package, tmp_path, edit, code, words) -> None:
    package = variant(ext_package, tmp_path / "pkg", edit)
    report = run(package, HOST_ORT, ("integrity",))["integrity"]
    assert report.status.value == "fail" and codes(report) == {code}
    (finding,) = report.findings
    assert "weights/mlp.bin" in finding.message and words in finding.message
    assert finding.remediation and "modelcompat package" in finding.remediation
