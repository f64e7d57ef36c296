"""torch files across releases: the refusals real torch releases print are classified, and the fix names who saved
the file, what the cell's torch reads, and the release that reads it. The recorded texts come from torch 2.5.1 and
the host's torch (tests/support/recorded/torch_release_errors.json; `make corpus` re-records them); the cells below
are real host-torch probes loading real files whose format record was raised, as a newer torch writes them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.model.package import ModelPackage
from modelcompat.model.provenance import ArtifactFacts, read_facts
from modelcompat.validators import torch_formats
from modelcompat.validators.loadability import classify_load_error
from support.pkgvariants import TORCH_EAGER, TORCHSCRIPT, rehash, variant
from support.provenance_edits import set_pt2_schema_version, set_pt2_torch_version, set_torchscript_version

RECORDED = json.loads((Path(__file__).parents[1] / "support" / "recorded" / "torch_release_errors.json").read_text())


@pytest.mark.parametrize("entry", RECORDED["errors"], ids=lambda e: f"{e['reader']} reads {e['file'][:40]}")
def test_recorded_refusals_are_classified(entry) -> None:
    code, remediation = classify_load_error(entry["text"])
    assert code == entry["code"], entry
    assert "torch" in remediation


def test_a_damaged_archive_is_not_taken_for_another_release() -> None:
    assert classify_load_error("RuntimeError: PytorchStreamReader failed reading zip archive: failed finding "
                               "central directory")[0] == "invalid_model"


def test_an_older_torch_is_told_the_release_that_saved_the_file(demo_package) -> None:
    # torch 2.5.1 meeting the demo's .pt2 (saved by this torch): the archive layout it predates.
    import torch

    facts = read_facts(demo_package.resolve("model.pt2"), "pt2", "model.pt2")
    (entry,) = [e for e in RECORDED["errors"] if e["source"] == "direct" and e["reader"].startswith("2.5.")]
    text = entry["text"]
    fix = torch_formats.remediation(classify_load_error(text)[0], text, facts, "2.5.1+cu124", "torch-2.5")
    saved = torch.__version__
    minor = ".".join(saved.split(".")[:2])
    assert f"model.pt2 was saved by torch {saved} (torch.export schema {facts.schema_version})" in fix
    assert "torch-2.5 runs torch 2.5.1+cu124" in fix and "a newer archive layout" in fix
    assert f"serve it on torch {minor}," in fix and "re-export it with torch 2.5 " in fix


def test_a_newer_torch_is_told_the_schema_it_reads() -> None:
    (entry,) = [e for e in RECORDED["errors"] if e["source"] == "direct" and "saved by torch 2.5.1" in e["file"]]
    text = entry["text"]
    facts = ArtifactFacts(path="model.pt2", format="pt2", torch_version="2.5.1+cu124", schema_version="7.3")
    fix = torch_formats.remediation(classify_load_error(text)[0], text, facts, "2.13.0+cpu", "host-torch")
    assert "saved by torch 2.5.1+cu124 (torch.export schema 7.3)" in fix and "reads schema 8.x only" in fix
    assert "an older schema generation" in fix and "serve it on torch 2.5 or newer within its schema" in fix
    assert "re-export it with torch 2.13 " in fix


def _raised(folder: Path, manifest: dict) -> None:
    """The demo's .pt2 as a future torch would write it (schema 9, saved by 2.99.0), and its TorchScript at
    file format 11."""
    set_pt2_schema_version(folder / "model.pt2", 9, 0)
    set_pt2_torch_version(folder / "model.pt2", "2.99.0")
    set_torchscript_version(folder / "model.torchscript.pt", 11)
    rehash(folder, manifest)


def _loadability(package: ModelPackage, cell):
    job = CellJob(cell=cell, package_root=str(package.root), validators=("loadability",), run_id="t")
    return check_cell(job)[0]


def _the_failure(demo_package: ModelPackage, tmp_path: Path, cell, code: str):
    """The one finding of loadability failing on the raised files in `cell`, with `code`."""
    report = _loadability(variant(demo_package, tmp_path / "pkg", _raised), cell)
    assert report.status.value == "fail", report.findings
    (finding,) = report.findings
    assert finding.code == f"loadability.{code}"
    return finding


def test_a_pt2_from_a_future_schema_fails_in_a_real_cell_with_the_cause(demo_package, tmp_path) -> None:
    import torch

    finding = _the_failure(demo_package, tmp_path, TORCH_EAGER, "pt2_version_unsupported")
    # The cause torch only logged is in the message, not "check the warnings above" alone.
    assert "does not match our current schema version" in finding.message
    assert f"saved by torch 2.99.0 (torch.export schema 9.0); host-torch runs torch {torch.__version__}" \
        in finding.remediation
    assert "serve it on torch 2.99," in finding.remediation


def test_a_torchscript_from_a_newer_torch_fails_in_a_real_cell(demo_package, tmp_path) -> None:
    finding = _the_failure(demo_package, tmp_path, TORCHSCRIPT, "torchscript_version_unsupported")
    assert "is TorchScript file format 11" in finding.remediation and "reads up to format 10" in finding.remediation


def test_the_demo_as_saved_loads_in_both_torch_modes(demo_package) -> None:
    # The same cells on the untouched files: the raised records above are what made the failures.
    for cell in (TORCH_EAGER, TORCHSCRIPT):
        assert _loadability(demo_package, cell).status.value == "pass"
