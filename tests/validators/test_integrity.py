"""`integrity` through the real harness: the declared sha256 against the artifact's bytes, with no probe."""
from __future__ import annotations

from modelcompat.validators.integrity import Integrity
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
