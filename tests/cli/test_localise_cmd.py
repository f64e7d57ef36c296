"""`modelcompat localise` on a stored run with a real failing parity report: the node, the JSON, the store's copy,
and bad input (unknown run, unknown cell, a cell whose parity passed) as exit 2 with what would be valid."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelcompat.cli.localise import print_localisation
from support import localmodels

FP16, FP32 = "host-ort/cpu/ort-fp16", "host-ort/cpu/ort-cpu"


@pytest.fixture(scope="module")
def fp16_run(demo_package, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("localise")
    package = localmodels.package_of(demo_package, tmp / "pkg", localmodels.fp16_overflow(), 1.0)
    store, run_id, statuses = localmodels.stored_run(tmp / "store", package, [FP32, FP16], tmp / "matrix.yaml")
    assert statuses == {FP32: localmodels.Status.PASS, FP16: localmodels.Status.FAIL}
    return store, run_id, package


def test_localise_names_the_first_diverging_node_and_keeps_the_result(fp16_run, tmp_path, invoke):
    store, run_id, package = fp16_run
    out = tmp_path / "loc.json"
    code, stdout, stderr = invoke("localise", run_id, "--cell", FP16, "--model", str(package.root), "--json", str(out),
                                  "--batch", "2", "--store", store.uri)
    assert code == 0, stderr
    assert "first diverging node: square (ai.onnx::Mul)" in stdout
    assert "inputs already diverged: no" in stdout and "path to output probabilities: square -> shrink" in stdout
    doc = json.loads(out.read_text())
    assert doc["node"]["name"] == "square" and doc["against"] == "reference" and doc["run_id"] == run_id
    kept = store.list_files(f"localisations/{run_id}", ".json")
    assert kept and json.loads(store.read_file(kept[-1]))["node"]["name"] == "square"


def test_against_another_cell_of_the_run(fp16_run, invoke):
    store, run_id, package = fp16_run
    code, stdout, _ = invoke("localise", run_id, "--cell", FP16, "--against", FP32, "--model", str(package.root),
                             "--store", store.uri)
    assert code == 0 and f"{FP16} against {FP32}" in stdout and "first diverging node: square" in stdout


@pytest.mark.parametrize(("args", "said"), [
    (["NOPE-run", "--cell", FP16], "NOPE-run"),
    (["{run}", "--cell", "no/such/cell"], "cells whose parity failed in that run: " + FP16),
    (["{run}", "--cell", FP32], f"numerical_parity did not fail on {FP32}"),
    (["{run}", "--cell", FP16, "--against", "no/such/cell"], "no cell 'no/such/cell' in the run's matrix"),
], ids=["unknown run", "unknown cell", "parity passed", "unknown --against"])
def test_bad_input_exits_2_saying_what_is_valid(fp16_run, invoke, args, said):
    store, run_id, package = fp16_run
    args = [a.replace("{run}", run_id) for a in args]
    code, _, stderr = invoke("localise", *args, "--model", str(package.root), "--store", store.uri)
    assert code == 2 and said in " ".join(stderr.split()) and "Traceback" not in stderr


def test_reduce_writes_a_bundle_whose_script_fails_the_same_way_in_the_cells_clean_venv(demo_package, tmp_path,
                                                                                          invoke):
    """onnxruntime 1.16.3 against 1.31.1: LayerNormalization alone, fed 1.31.1's input, gives NaN on 1.16.3; the
    bundle's repro.py, run by the 1.16.3 venv's interpreter (onnxruntime and numpy only), fails with that code."""
    old, new = "ort-1.16/cpu/ort-cpu", "host-ort/cpu/ort-cpu"
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.layer_norm(), 1e-2, (5e-2, 1e-2))
    store, run_id, statuses = localmodels.stored_run(tmp_path / "store", package, [new, old], tmp_path / "m.yaml")
    assert statuses[old].value == "fail" and statuses[new].value == "pass"
    out = tmp_path / "bundle"
    code, stdout, stderr = invoke("localise", run_id, "--cell", old, "--against", new, "--model", str(package.root),
                                  "--reduce", "--out", str(out), "--store", store.uri)
    assert code == 0, stderr
    assert "reduced to 1 node(s) (layer_norm) failing with numerical_parity.non_finite" in " ".join(stdout.split())
    assert (out / "model.onnx").is_file() and (out / "test_data_set_0" / "input_0.pb").is_file()
    assert (out / "test_data_set_0" / "output_0.pb").is_file()
    assert "onnxruntime==1.16.3" in (out / "requirements.lock").read_text().splitlines()
    venv_python = localmodels.cell_python(tmp_path / "m.yaml", old)
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    no_modelcompat = subprocess.run([venv_python, "-I", "-c", "import modelcompat"], capture_output=True, env=clean)
    assert no_modelcompat.returncode != 0  # a clean venv: onnxruntime 1.16.3 and numpy, no modelcompat, no onnx
    repro = subprocess.run([venv_python, "-I", str(out / "repro.py")], capture_output=True, text=True, env=clean,
                           cwd=tmp_path, timeout=120)
    assert repro.returncode == 1, repro.stderr
    assert "onnxruntime 1.16.3" in repro.stdout and "FAIL numerical_parity.non_finite" in repro.stdout
    # the newest release passes the same bundle: the failure is the old release's kernel
    host = subprocess.run([sys.executable, str(out / "repro.py")], capture_output=True, text=True, timeout=120)
    assert host.returncode == 0 and "pass" in host.stdout


def test_reduce_needs_out_and_out_needs_reduce(fp16_run, invoke, tmp_path):
    store, run_id, package = fp16_run
    code, _, stderr = invoke("localise", run_id, "--cell", FP16, "--reduce", "--store", store.uri)
    assert code == 2 and "--out" in stderr
    code, _, stderr = invoke("localise", run_id, "--cell", FP16, "--out", str(tmp_path), "--store", store.uri)
    assert code == 2 and "--reduce" in stderr


def test_the_report_links_and_draws_the_localisation(fp16_run, invoke, tmp_path):
    store, run_id, package = fp16_run
    code, _, stderr = invoke("localise", run_id, "--cell", FP16, "--model", str(package.root), "--store", store.uri)
    assert code == 0, stderr
    code, out, _ = invoke("report", run_id, "--format", "json", "--store", store.uri)
    parity = next(r for r in json.loads(out)["reports"] if r["cell"] == FP16 and r["validator"] == "numerical_parity")
    linked = [f["remediation"] for f in parity["findings"] if f["severity"] == "error"]
    assert linked and all(r.startswith("localised: first diverging node square (ai.onnx::Mul) against reference; "
                                       "details: ") and "localisations" in r for r in linked)
    page = tmp_path / "report.html"
    assert invoke("report", run_id, "--format", "html", "--out", str(page), "--store", store.uri)[0] == 0
    text = page.read_text()
    assert '<section id="localised">' in text and "first diverging node <b>square</b>" in text
    # one bar per compared node on the path square -> shrink -> ... -> the output; the first ones diverged (red)
    assert text.count('class="node-error"') >= 3 and 'fill="#d64541"><title>square (Mul): max abs' in text


def test_nothing_found_is_said_in_one_line(capsys):
    print_localisation({"cell": "c", "against": "reference", "nodes_total": 3, "tensors_compared": 0,
                        "runs_per_side": 1, "batch": 16, "found": False, "note": "nothing to localise"})
    out = capsys.readouterr().out
    assert "c against reference: 3 nodes" in out and "nothing to localise" in out and "first diverging" not in out


def test_a_cell_without_kernels_lists_every_node_and_bundles_each(demo_package, tmp_path, invoke):
    """operator_coverage failed on 1.16.3 (three nodes without a kernel), parity could not run: localise lists the
    three and, with --reduce, writes a one-node bundle for each."""
    from support.tinyonnx import onnx_package

    old = "ort-1.16/cpu/ort-cpu"
    package = onnx_package(demo_package, tmp_path / "pkg", localmodels.three_without_kernels_on_116())
    store, run_id, statuses = localmodels.stored_run(tmp_path / "store", package, [old], tmp_path / "m.yaml",
                                                     validators=("operator_coverage", "numerical_parity"))
    assert statuses[old].value == "fail"
    out, doc_path = tmp_path / "bundles", tmp_path / "k.json"
    code, stdout, stderr = invoke("localise", run_id, "--cell", old, "--model", str(package.root), "--reduce",
                                  "--out", str(out), "--json", str(doc_path), "--store", store.uri)
    assert code == 0, stderr
    text = " ".join(stdout.split())
    assert f"{old}: 3 kernel signature(s) of" in text and "missing on onnxruntime 1.16.3" in text
    for node in ("erf_node", "add_node", "mul_node"):
        assert f"at {node}; repro bundle: {out / node}" in text and (out / node / "repro.py").is_file()
    assert {m["nodes"][0] for m in json.loads(doc_path.read_text())["missing"]} == {"erf_node", "add_node", "mul_node"}
