"""`modelcompat report` shows the package's provenance (md, html) when it finds the package, and says nothing of it
(rather than failing) when the package is gone; a --model that is not the run's package is an input error."""
from __future__ import annotations

from pathlib import Path


def test_markdown_and_html_show_what_the_artifacts_say(history_store, demo_package, invoke, tmp_path: Path) -> None:
    store, run_ids = history_store
    code, out, err = invoke("report", run_ids[0], "--format", "md", "--store", store.uri,
                            "--model", str(demo_package.root))
    assert code == 0, err
    section = out[out.index("## Provenance"):]
    import torch
    assert f"| model.pt2 | saved by torch {torch.__version__}" in section
    assert "declares no provenance" in section  # the demo's manifest declares none
    page = tmp_path / "r.html"
    code, _, err = invoke("report", run_ids[0], "--format", "html", "--out", str(page), "--store", store.uri,
                          "--model", str(demo_package.root))
    assert code == 0, err
    assert 'id="provenance"' in page.read_text() and "saved by pytorch" in page.read_text()


def test_a_package_that_is_not_the_runs_is_refused(history_store, demo_package, invoke, tmp_path: Path) -> None:
    store, run_ids = history_store
    other = tmp_path / "other"
    from support.pkgvariants import rehash, variant
    from support.provenance_edits import set_onnx_producer

    def edit(folder: Path, manifest: dict) -> None:
        set_onnx_producer(folder / "model.onnx", "other", "1")
        rehash(folder, manifest)
    variant(demo_package, other, edit)
    code, _, err = invoke("report", run_ids[0], "--format", "md", "--store", store.uri, "--model", str(other))
    assert code == 2 and "--model" in err and "is not the one run" in err
