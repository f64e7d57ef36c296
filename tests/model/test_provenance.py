"""Provenance: the manifest's declared fields (SPDX licence validated, with a fix naming the file and field) and the
facts read from real artifacts without loading them."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from modelcompat.errors import ManifestError
from modelcompat.model.package import load_package, write_manifest
from modelcompat.model.provenance import Provenance, package_provenance, read_facts, release, spdx_expression
from support.pkgvariants import variant
from support.provenance_edits import set_onnx_producer, set_pt2_torch_version

DECLARED = {
    "licence": "apache-2.0",
    "source": {"repo": "https://example.org/org/demo", "commit": "0123abcd", "path": "train.py"},
    "training_data": [{"name": "iris", "uri": "https://example.org/iris.csv", "version": "2024-01"}],
    "owner": "ml-platform@example.org",
    "intended_use": "demo classification; not for medical use",
    "lineage": [{"step": "export", "tool": "torch", "version": "2.13.0", "artifact": "model.onnx"},
                {"step": "fp16", "tool": "onnxconverter-common", "version": "1.16.0"}],
}


def _with(provenance):
    def edit(folder: Path, manifest: dict) -> None:
        manifest["provenance"] = provenance
    return edit


@pytest.mark.parametrize(("text", "canonical"), [
    ("apache-2.0", "Apache-2.0"), ("MIT", "MIT"), ("mit or Apache-2.0", "MIT OR Apache-2.0"),
    ("GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-or-later WITH Classpath-exception-2.0"),
    ("LicenseRef-acme-model-licence", "LicenseRef-acme-model-licence"),
    ("LicenseRef-acme AND cc-by-4.0", "LicenseRef-acme AND CC-BY-4.0"),
])
def test_valid_spdx_expressions_are_kept_in_canonical_spelling(text, canonical):
    assert spdx_expression(text) == canonical


@pytest.mark.parametrize(("text", "says"), [
    ("Apache 2.0", "did you mean Apache-2.0"), ("GPL2", "GPL-2.0-only"), ("llama3", "is not an SPDX licence id"),
    ("MIT OR", "not a valid SPDX licence expression"), ("(MIT", "not a valid SPDX licence expression"),
    ("", "empty"),
])
def test_invalid_licences_are_refused_with_what_was_probably_meant(text, says):
    with pytest.raises(ValueError, match=None) as caught:
        spdx_expression(text)
    assert says in str(caught.value)


def test_a_declared_provenance_loads_and_writes_back(demo_package, tmp_path):
    package = variant(demo_package, tmp_path / "pkg", _with(DECLARED))
    declared = package.manifest.provenance
    assert declared.licence == "Apache-2.0" and declared.source.commit == "0123abcd"
    assert [s.step for s in declared.lineage] == ["export", "fp16"] and declared.training_data[0].name == "iris"
    write_manifest(package.root, package.manifest)
    assert load_package(package.root).manifest.provenance == declared
    assert yaml.safe_load((package.root / "modelcompat.yaml").read_text())["provenance"]["licence"] == "Apache-2.0"


def test_license_is_accepted_as_an_alias_of_licence(demo_package, tmp_path):
    package = variant(demo_package, tmp_path / "pkg", _with({"license": "MIT"}))
    assert package.manifest.provenance.licence == "MIT"


def test_a_manifest_without_provenance_reads_and_writes_as_before(demo_package, tmp_path):
    assert demo_package.manifest.provenance is None
    text = (demo_package.root / "modelcompat.yaml").read_text()
    write_manifest(tmp_path, demo_package.manifest)
    assert (tmp_path / "modelcompat.yaml").read_text() == text


def test_a_bad_licence_names_the_file_the_field_and_the_fix(demo_package, tmp_path):
    with pytest.raises(ManifestError) as caught:
        variant(demo_package, tmp_path / "pkg", _with({"licence": "Apache 2.0"}))
    err = caught.value
    assert err.file == str(tmp_path / "pkg" / "modelcompat.yaml") and err.field == "provenance.licence"
    assert "'Apache 2.0' is not an SPDX licence id; did you mean Apache-2.0?" in err.message
    assert "https://spdx.org/licenses/" in err.fix and "LicenseRef-" in err.fix
    assert err.line is not None


@pytest.mark.parametrize(("provenance", "field"), [
    ({"source": {"commit": "not-a-sha"}}, "provenance.source.commit"),
    ({"lineage": [{"step": "export"}]}, "provenance.lineage[0].tool"),
    ({"owner": "me", "licence_url": "x"}, "provenance.licence_url"),
])
def test_other_bad_provenance_fields_are_named(demo_package, tmp_path, provenance, field):
    with pytest.raises(ManifestError) as caught:
        variant(demo_package, tmp_path / "pkg", _with(provenance))
    assert caught.value.field == field


def test_facts_are_read_from_the_demo_artifacts_as_saved(demo_package):
    facts = {f.format: f for f in package_provenance(demo_package).artifacts}
    import onnx
    import torch

    assert facts["onnx"].producer_name == "pytorch"
    assert facts["onnx"].producer_version == torch.__version__.split("+")[0]
    assert facts["onnx"].opsets["ai.onnx"] == onnx.load(str(demo_package.root / "model.onnx")).opset_import[0].version
    assert facts["pt2"].torch_version == torch.__version__ and facts["pt2"].schema_version
    assert facts["torchscript"].file_format_version is not None and facts["torchscript"].torch_version is None
    assert facts["pt2"].saved_by() == f"torch {torch.__version__}"


def test_facts_follow_the_file_not_the_running_torch(demo_package, tmp_path):
    pt2, onnx_path = tmp_path / "model.pt2", tmp_path / "model.onnx"
    pt2.write_bytes((demo_package.root / "model.pt2").read_bytes())
    onnx_path.write_bytes((demo_package.root / "model.onnx").read_bytes())
    set_pt2_torch_version(pt2, "2.99.1")
    set_onnx_producer(onnx_path, "onnxruntime.quant", "1.99.0")
    assert read_facts(pt2, "pt2").torch_version == "2.99.1"
    assert read_facts(onnx_path, "onnx").saved_by() == "onnxruntime.quant 1.99.0"


def test_a_pt2_archive_is_never_unpickled(tmp_path):
    # A .pt2 whose only pickle would run a command when loaded: its facts are read from the program JSON alone.
    path = tmp_path / "evil.pt2"
    marker = tmp_path / "ran"
    import pickle

    class Boom:
        def __reduce__(self):
            return (Path.touch, (marker,))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/models/model.json", '{"torch_version": "2.13.0", "schema_version": {"major": 8, "minor": 1}}')
        zf.writestr("evil/data/sample_inputs/model.pt", pickle.dumps(Boom()))
    facts = read_facts(path, "pt2")
    assert facts.torch_version == "2.13.0" and facts.schema_version == "8.1" and not marker.exists()


def test_an_unreadable_artifact_gives_facts_with_the_reason(tmp_path):
    path = tmp_path / "model.pt2"
    path.write_bytes(b"PK\x03\x04 truncated")
    facts = read_facts(path, "pt2")
    assert facts.error and "BadZipFile" in facts.error and facts.torch_version is None


def test_release_numbers():
    assert release("2.13.0+cpu") == (2, 13, 0) and release("1.16") == (1, 16, 0) and release("dev") is None


def test_an_empty_provenance_is_empty():
    assert Provenance().is_empty() and not Provenance(owner="x").is_empty()
