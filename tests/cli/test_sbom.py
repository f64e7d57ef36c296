"""`modelcompat sbom` on a real run of the default matrix's CPU onnxruntime cells (the host's and the 1.16.3 venv):
a CycloneDX 1.6 document that the schema accepts, whose files, hashes and environments are the run's."""
from __future__ import annotations

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from modelcompat.settings import matrices_dir

DEFAULT = str(matrices_dir() / "default.yaml")


@pytest.fixture
def ort_run(demo_package, tmp_path, monkeypatch):
    from modelcompat.execution.harness import check_cell
    from modelcompat.orchestration.matrix_run import finish_run, keep_cell, prepare_run

    monkeypatch.setenv("MODELCOMPAT_HOME", str(tmp_path / "home"))
    store = str(tmp_path / "store")
    run = prepare_run(matrix=DEFAULT, model=str(demo_package.root), validators=["loadability"], cells="*/cpu/ort-cpu",
                      store=store, params=None, force=False, force_validators=None, offered={"local": {}})
    for job in run.jobs:
        keep_cell(run, job, check_cell(job))
    return store, finish_run(run, trigger="cli", flow_run_id=None).summary


def test_the_sbom_names_the_models_files_and_every_package_of_each_cell(ort_run, demo_package, invoke, tmp_path):
    import onnxruntime

    store, summary = ort_run
    out = tmp_path / "bom.json"
    code, _, stderr = invoke("sbom", summary.run_id, "--out", str(out), "--model", str(demo_package.root),
                             "--store", store)
    assert code == 0, stderr
    text = out.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None  # the schema's own verdict
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6" and bom["bomFormat"] == "CycloneDX"
    subject = bom["metadata"]["component"]
    assert subject["type"] == "machine-learning-model" and subject["name"] == "demo-mlp"
    assert subject["hashes"] == [{"alg": "SHA-256", "content": summary.model.sha256}]
    files = {c["name"]: c for c in bom["components"] if c["type"] == "file"}
    assert {a.path for a in demo_package.manifest.artifacts} <= set(files)
    onnx_file = files[demo_package.artifact("onnx").path]
    assert onnx_file["hashes"][0]["content"] == demo_package.artifact("onnx").sha256
    facts = {p["name"]: p["value"] for p in onnx_file["properties"]}
    assert facts["modelcompat:producer_name"] == "pytorch" and "ai.onnx=" in facts["modelcompat:opsets"]
    cells = {c["name"]: c for c in bom["components"] if c["type"] == "platform"}
    assert set(cells) == {"host-ort/cpu/ort-cpu", "ort-1.16/cpu/ort-cpu"}  # the CUDA cell was skipped: not there
    versions = {cell: {p["name"].lower(): p["version"] for p in c["components"]} for cell, c in cells.items()}
    assert versions["ort-1.16/cpu/ort-cpu"]["onnxruntime"] == "1.16.3"
    assert versions["host-ort/cpu/ort-cpu"]["onnxruntime"] == onnxruntime.__version__
    assert len(versions["host-ort/cpu/ort-cpu"]) > 50  # every installed package, not only the runtime
    assert all(p["purl"].startswith("pkg:pypi/") and "@" in p["purl"] for c in cells.values() for p in c["components"])
    depends = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert all(subject["bom-ref"] in depends[c["bom-ref"]] for c in cells.values())


def test_an_unknown_run_is_exit_2(invoke, tmp_path):
    code, _, stderr = invoke("sbom", "NOPE", "--out", str(tmp_path / "b.json"), "--store", str(tmp_path / "s"))
    assert code == 2 and "NOPE" in stderr and not (tmp_path / "b.json").exists()
