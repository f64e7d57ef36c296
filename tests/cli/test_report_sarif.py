"""`modelcompat report RUN_ID --format sarif` on real runs: a stored run with a baseline, and a `modelcompat check`
of a model file inside a repository, as CI would upload it; every document validated against the SARIF schema."""
from __future__ import annotations

import json
from pathlib import Path

from support.sarif import validated_sarif


def test_a_stored_run_with_regressions_as_sarif(history_store, demo_package, tmp_path: Path, invoke) -> None:
    store, run_ids = history_store
    out = tmp_path / "run.sarif"
    code, _, err = invoke("report", run_ids[5], "--format", "sarif", "--out", str(out), "--store", store.uri,
                          "--model", str(demo_package.root))
    assert code == 0, err
    doc = validated_sarif(out.read_text())
    run = doc["runs"][0]
    assert run["properties"]["run_id"] == run_ids[5] and run["properties"]["verdict"] == "fail"
    hashes = {a["properties"]["path_in_package"]: a["hashes"]["sha-256"] for a in run["artifacts"]}
    assert hashes == {a.path: a.sha256 for a in demo_package.manifest.artifacts}
    results = {(r["ruleId"], r["properties"]["cell"]): r for r in run["results"]}
    contract = next(r for (rule, _), r in results.items() if rule == "io_contract.shape_mismatch")
    assert contract["level"] == "error"
    uri = contract["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == (demo_package.root / "model.onnx").as_uri()  # outside the working directory: an absolute URI
    assert {r["ruleId"] for r in run["results"]} >= {"baseline.regression"}
    assert run["properties"]["provenance"]["artifacts"][0]["producer_name"] == "pytorch"


def test_an_unknown_format_lists_sarif(history_store, invoke) -> None:
    store, run_ids = history_store
    code, _, err = invoke("report", run_ids[0], "--format", "sarf", "--store", store.uri)
    assert code == 2 and "sarif" in err


def test_a_check_in_a_repository_points_at_the_file_given(demo_package, tmp_path: Path, cli) -> None:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    model = repo / "models" / "classifier.onnx"
    model.write_bytes((demo_package.root / "model.onnx").read_bytes())
    env = {"MODELCOMPAT_HOME": str(tmp_path / "home"), "PREFECT_API_URL": ""}
    summary = tmp_path / "summary.json"
    proc = cli("check", str(model), "--cells", "host-ort/cpu/ort-cpu", "--validators", "integrity,loadability",
               "--json", str(summary), cwd=repo, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = json.loads(summary.read_text())["run_id"]
    proc = cli("report", run_id, "--format", "sarif", "--out", "modelcompat.sarif", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    run = validated_sarif((repo / "modelcompat.sarif").read_text())["runs"][0]
    (artifact,) = run["artifacts"]
    assert artifact["location"] == {"uri": "models/classifier.onnx", "uriBaseId": "SRCROOT"}
    import hashlib
    assert artifact["hashes"]["sha-256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == repo.as_uri() + "/"
    assert run["results"] == [] and run["invocations"][0]["executionSuccessful"] is True
