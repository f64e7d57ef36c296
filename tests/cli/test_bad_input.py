"""Bad input refused (issue 8): malformed manifests through the real CLI (exit 2, file + field, no traceback),
bad artifact and payload bytes as `fail` reports naming the file, and a fuzz of the manifest loader.

Already covered elsewhere (referenced from docs/reliability.md, not repeated): matrices (tests/matrix/test_spec.py),
artifact sniffing (tests/model/test_inspect.py), payload refusals at packaging (tests/model/test_build.py),
sha256 mismatch end to end (tests/flows/test_check_matrix.py), NaN/Inf/dtype payloads (tests/validators/
test_data_contract.py), malicious pickles (tests/validators/test_unsafe_serialization.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelcompat.errors import InputError
from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.model.package import load_package
from support.pkgvariants import HOST_ORT, rehash, variant

CLI = [sys.executable, "-m", "modelcompat.cli"]


def _set(path: str, value):
    def edit(folder: Path, manifest: dict) -> None:
        *parents, last = path.split(".")
        node = manifest
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return edit


_DELETE = object()


def _symlink_payload_outside(folder: Path, manifest: dict) -> None:
    outside = folder.parent / "secret.npz"
    shutil.copy(folder / "payload.npz", outside)
    (folder / "payload.npz").unlink()
    (folder / "payload.npz").symlink_to(outside)


def _raw(text: str):
    def edit(folder: Path, manifest: dict) -> None:
        manifest.clear()
        manifest["__raw__"] = text
    return edit


MANIFESTS = [
    # id,                        edit,                                              names in the message
    ("missing-contract", _set("contract", _DELETE), ["contract", "required field is missing"]),
    ("missing-artifacts", _set("artifacts", _DELETE), ["artifacts"]),
    ("wrong-type-version", _set("version", ["1", "2"]), ["version"]),
    ("wrong-type-shape", _set("contract.inputs.0.shape", "batch x 16"), ["contract.inputs[0].shape"]),
    ("wrong-type-tolerance", _set("tolerances.atol", "tight"), ["tolerances.atol"]),
    ("bad-sha256-format", _set("artifacts.0.sha256", "abc"), ["artifacts[0].sha256"]),
    ("unknown-key", _set("colour", "red"), ["colour"]),
    ("artifact-path-escapes", _set("artifacts.0.path", "../model.onnx"), ["artifacts[0].path", "inside the package"]),
    ("payload-absolute-path", _set("payload", "/etc/hostname"), ["payload", "inside the package"]),
    ("payload-symlink-outside", _symlink_payload_outside, ["payload.npz", "outside the package"]),
    ("artifact-file-missing", _set("artifacts.0.path", "nope.onnx"), ["artifacts[0].path", "nope.onnx"]),
    ("not-yaml", _raw("name: [unclosed\nversion: {\n"), ["invalid YAML"]),
    ("not-a-mapping", _raw("- just\n- a list\n"), ["mapping"]),
]


@pytest.mark.parametrize(("edit", "needles"), [c[1:] for c in MANIFESTS], ids=[c[0] for c in MANIFESTS])
def test_malformed_manifest_is_refused_by_the_cli_with_exit_2(demo_package, tmp_path: Path, edit, needles) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(demo_package.root, pkg)
    manifest = yaml.safe_load((pkg / "modelcompat.yaml").read_text())
    edit(pkg, manifest)
    text = manifest["__raw__"] if "__raw__" in manifest else yaml.safe_dump(manifest, sort_keys=False)
    (pkg / "modelcompat.yaml").write_text(text)
    env = {**os.environ, "MODELCOMPAT_HOME": str(tmp_path / "home"), "COLUMNS": "400"}
    proc = subprocess.run([*CLI, "run", "--model", str(pkg)], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "modelcompat.yaml" in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "home" / "store").exists()  # nothing ran, nothing stored


def _artifact_bytes(data) -> callable:
    def edit(folder: Path, manifest: dict) -> None:
        path = folder / "model.onnx"
        path.write_bytes(data(folder, path.read_bytes()))
        rehash(folder, manifest)  # the hash is right: the defect is in the bytes, not in integrity
    return edit


def _payload(fn) -> callable:
    def edit(folder: Path, manifest: dict) -> None:
        with np.load(folder / "payload.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        np.savez(folder / "payload.npz", **fn(arrays))
    return edit


ARTIFACTS = [
    # id,                   edit,                                                            validator,     codes
    ("zero-bytes", _artifact_bytes(lambda f, b: b""), "loadability", {"loadability.load_failed"}),
    ("truncated", _artifact_bytes(lambda f, b: b[: len(b) // 2]), "loadability", {"loadability.invalid_model"}),
    ("wrong-magic", _artifact_bytes(lambda f, b: b"\x89PNG\r\n\x1a\n" + b[8:]), "loadability",
     {"loadability.invalid_model"}),
    ("torchscript-declared-onnx", _artifact_bytes(lambda f, b: (f / "model.torchscript.pt").read_bytes()),
     "loadability", {"loadability.invalid_model"}),
    ("payload-wrong-shape", _payload(lambda a: {k: np.zeros((2, 7), v.dtype) for k, v in a.items()}),
     "io_contract", {"io_contract.payload_mismatch"}),
    ("payload-wrong-dtype", _payload(lambda a: {k: v.astype(np.int64) for k, v in a.items()}),
     "io_contract", {"io_contract.payload_mismatch"}),
    ("payload-nan", _payload(lambda a: {k: np.full_like(v, np.nan) for k, v in a.items()}),
     "data_contract", {"data_contract.expect_column_values_to_not_be_null_failed"}),
]


@pytest.mark.parametrize(("edit", "validator", "expected"), [c[1:] for c in ARTIFACTS], ids=[c[0] for c in ARTIFACTS])
def test_bad_artifact_or_payload_is_a_fail_report_naming_the_file(demo_package, tmp_path: Path, edit, validator,
                                                                 expected) -> None:
    package = variant(demo_package, tmp_path / "pkg", edit)
    (report,) = check_cell(CellJob(cell=HOST_ORT, package_root=str(package.root), validators=(validator,),
                                   run_id="bad-input"))
    assert report.status.value == "fail", report.findings
    assert {f.code for f in report.findings} >= expected
    for finding in report.findings:
        assert finding.message and finding.remediation
        assert "Traceback" not in finding.message


# A manifest is YAML of a known shape: fuzz around it (random values at known keys) and with arbitrary YAML.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=8)
_KEYS = ["schema_version", "name", "version", "artifacts", "contract", "payload", "reference", "tolerances",
         "requirements", "budgets"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=10), _values),
       raw=st.one_of(st.none(), st.text(max_size=200)))
def test_fuzz_manifest_loader_raises_only_input_errors(tmp_path_factory, doc, raw) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "payload.npz").write_bytes(b"")
    (folder / "model.onnx").write_bytes(b"")
    text = raw if raw is not None else yaml.safe_dump(doc)
    (folder / "modelcompat.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_package(folder)
    except InputError as exc:
        assert exc.render()  # every refusal renders to a message
