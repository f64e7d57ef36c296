"""Provenance in reports: the declared fields and each artifact's facts as rows, markdown, HTML and terminal lines;
and in the SBOM (licence, source, training data, lineage, the torch that saved the .pt2), schema-valid."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from modelcompat.model.provenance import ArtifactFacts, ModelProvenance, Provenance, package_provenance
from modelcompat.render.html import render_html
from modelcompat.render.provenance import provenance_html, provenance_lines, provenance_markdown, provenance_rows
from modelcompat.render.sbom import build_sbom
from modelcompat.store import RunRecord
from support.pkgvariants import variant
from support.reportdata import sample_summary

DECLARED = Provenance.model_validate({
    "licence": "MIT", "source": {"repo": "https://example.org/org/demo", "commit": "0123abcd"},
    "training_data": [{"name": "iris", "uri": "https://example.org/iris.csv", "version": "2024-01"}],
    "owner": "ml-platform <ml@example.org>", "intended_use": "demo | not for medical use",
    "lineage": [{"step": "export", "tool": "torch", "version": "2.13.0", "artifact": "model.onnx"},
                {"step": "fp16", "tool": "onnxconverter-common"}]})
FACTS = [ArtifactFacts(path="model.onnx", format="onnx", producer_name="pytorch", producer_version="2.13.0",
                       ir_version=8, opsets={"ai.onnx": 17}),
         ArtifactFacts(path="model.pt2", format="pt2", torch_version="2.13.0+cpu", schema_version="8.20"),
         ArtifactFacts(path="broken.pt", format="torchscript", error="BadZipFile: File is not a zip file")]
PROVENANCE = ModelProvenance(declared=DECLARED, artifacts=FACTS)


def test_rows_say_what_was_declared_and_what_the_files_say():
    rows = dict(provenance_rows(PROVENANCE))
    assert rows["licence"] == "MIT" and rows["source"] == "https://example.org/org/demo @ 0123abcd"
    assert rows["training data"] == "iris version 2024-01 <https://example.org/iris.csv>"
    assert rows["lineage"] == "export (torch 2.13.0) → model.onnx → fp16 (onnxconverter-common)"
    assert rows["model.onnx"] == "saved by pytorch 2.13.0 · IR 8 · opsets ai.onnx 17"
    assert rows["model.pt2"] == "saved by torch 2.13.0+cpu · torch.export schema 8.20"
    assert rows["broken.pt"].startswith("unreadable (BadZipFile")
    assert provenance_lines(PROVENANCE)[0] == "licence: MIT"


def test_markdown_and_html_escape_what_the_manifest_says():
    md = provenance_markdown(PROVENANCE)
    assert md.startswith("## Provenance") and "| intended use | demo \\| not for medical use |" in md
    assert "declares no provenance" not in md
    page = provenance_html(PROVENANCE)
    assert "<th>owner</th><td>ml-platform &lt;ml@example.org&gt;</td>" in page and 'id="provenance"' in page
    assert provenance_html(None) == ""
    undeclared = ModelProvenance(artifacts=FACTS[:1])
    assert "declares no provenance" in provenance_markdown(undeclared)


def test_the_html_report_has_the_section_only_when_given():
    with_it = render_html(sample_summary(), provenance=PROVENANCE)
    assert with_it.index('id="provenance"') > with_it.index("<h2>Findings</h2>")
    assert 'id="provenance"' not in render_html(sample_summary())


def test_the_sbom_carries_the_provenance(demo_package, tmp_path: Path):
    def edit(folder: Path, manifest: dict) -> None:
        manifest["provenance"] = DECLARED.model_dump(mode="json", exclude_none=True)
    package = variant(demo_package, tmp_path / "pkg", edit)
    now = datetime(2026, 12, 5, tzinfo=timezone.utc)
    record = RunRecord(run_id="20261205T000000Z-prov00", trigger="cli", matrix="m", model_name="demo-mlp",
                       model_version="1.0.0", model_sha256=package.primary_sha256, verdict="pass",
                       started_at=now, finished_at=now)
    bom = json.loads(build_sbom(record, package, []))  # validated against CycloneDX 1.6 inside
    model = bom["metadata"]["component"]
    assert model["licenses"] == [{"expression": "MIT"}]
    (vcs,) = model["externalReferences"]
    assert vcs == {"type": "vcs", "url": "https://example.org/org/demo", "comment": "commit 0123abcd"}
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["modelcompat:owner"] == "ml-platform <ml@example.org>"
    assert props["modelcompat:lineage.0"] == "export torch 2.13.0 -> model.onnx"
    data = [c for c in bom["components"] if c["type"] == "data"]
    assert [(d["name"], d["version"]) for d in data] == [("iris", "2024-01")]
    (model_deps,) = [d for d in bom["dependencies"] if d["ref"] == model["bom-ref"]]
    assert data[0]["bom-ref"] in model_deps["dependsOn"]
    files = {c["name"]: {p["name"]: p["value"] for p in c.get("properties", [])} for c in bom["components"]
             if c["type"] == "file"}
    facts = {f.path: f for f in package_provenance(package).artifacts}
    assert files["model.pt2"]["modelcompat:torch_version"] == facts["model.pt2"].torch_version
    assert files["model.torchscript.pt"]["modelcompat:torchscript_file_format_version"] == str(
        facts["model.torchscript.pt"].file_format_version)


def test_the_terminal_block_lists_every_row():
    from rich.console import Console

    from modelcompat.render.provenance import print_provenance

    console = Console(record=True, width=200, color_system=None)
    print_provenance(console, PROVENANCE)
    text = console.export_text()
    assert text.splitlines()[0] == "provenance"
    assert "  licence: MIT" in text and "  model.pt2: saved by torch 2.13.0+cpu · torch.export schema 8.20" in text
    assert len(text.splitlines()) == 1 + len(provenance_rows(PROVENANCE))
