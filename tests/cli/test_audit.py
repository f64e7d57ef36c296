"""`modelcompat audit` and the gated `registry alias set` through the real app: a real run's verdict, a promotion
with its reason, alias moves refused and overridden, `--verify` intact and then tampered with."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelcompat.settings import matrices_dir

SMOKE = str(matrices_dir() / "smoke.yaml")


@pytest.fixture
def one_run(demo_package, tmp_path, monkeypatch):
    """A real run (integrity on the host cell) through the run's own steps, in a private home and store."""
    from modelcompat.execution.harness import check_cell
    from modelcompat.orchestration.matrix_run import finish_run, keep_cell, prepare_run

    monkeypatch.setenv("MODELCOMPAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELCOMPAT_USER", "dana")
    store = str(tmp_path / "store")
    run = prepare_run(matrix=SMOKE, model=str(demo_package.root), validators=["integrity"], cells="host-ort/*",
                      store=store, params=None, force=False, force_validators=None, offered={"local": {}})
    for job in run.jobs:
        keep_cell(run, job, check_cell(job))
    return store, finish_run(run, trigger="cli", flow_run_id=None).summary


def test_audit_lists_the_runs_verdict_and_a_promotion_with_its_reason(one_run, invoke) -> None:
    store, summary = one_run
    code, _, stderr = invoke("baseline", "promote", summary.run_id, "--reason", "first accepted build", "--store", store)
    assert code == 0, stderr
    code, out, _ = invoke("audit", "--store", store)
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 0 and len(lines) == 2
    assert "dana" in lines[0] and "run.verdict" in lines[0] and f"run {summary.run_id}: pass" in lines[0]
    assert "baseline.promote" in lines[1] and "— first accepted build" in lines[1]
    code, out, _ = invoke("audit", "demo-mlp", "--json", "--store", store)
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [r["action"] for r in records] == ["run.verdict", "baseline.promote"]
    assert records[0]["subject"]["model_sha256"] == summary.model.sha256 and records[1]["reason"] == "first accepted build"
    assert invoke("audit", "no-such-model", "--store", store)[1].strip() == ""
    code, _, stderr = invoke("audit", "--since", "yesterday", "--store", store)
    assert code == 2 and "--since" in stderr


def test_verify_passes_then_names_the_edited_record(one_run, invoke) -> None:
    store, summary = one_run
    assert invoke("baseline", "promote", summary.run_id, "--store", store)[0] == 0
    code, out, _ = invoke("audit", "--verify", "--store", store)
    assert code == 0 and "2 records, chain intact; head sha256 " in " ".join(out.split())
    first = Path(store) / "audit" / f"{0:012d}.json"
    record = json.loads(first.read_text())
    record["subject"]["verdict"] = "fail"  # rewrite history
    first.write_text(json.dumps(record))
    code, _, stderr = invoke("audit", "--verify", "--store", store)
    assert code == 1 and "record 0 (audit/000000000000.json) was edited" in " ".join(stderr.split())


def test_alias_set_is_gated_and_an_override_is_recorded(one_run, demo_package, invoke, tmp_path) -> None:
    store, summary = one_run
    registry = str(tmp_path / "registry")
    assert invoke("registry", "register", str(demo_package.root), "--registry", registry)[0] == 0
    code, _, stderr = invoke("registry", "alias", "set", "demo-mlp", "production", "1.0.0", "--registry", registry,
                             "--store", store)
    assert code == 2 and "it has never been checked" in " ".join(stderr.split()) and "--override" in stderr
    code, _, stderr = invoke("registry", "alias", "set", "demo-mlp", "production", "1.0.0", "--override",
                             "--registry", registry, "--store", store)
    assert code == 2 and "--reason" in stderr
    code, out, stderr = invoke("registry", "alias", "set", "demo-mlp", "production", "1.0.0", "--override",
                               "--reason", "demo day", "--registry", registry, "--store", store)
    assert code == 0, stderr
    assert "demo-mlp@production -> 1.0.0 (verdict none; override: demo day)" in out
    code, out, _ = invoke("audit", "--json", "--store", store)
    actions = [json.loads(line)["action"] for line in out.splitlines() if line.strip()]
    assert actions == ["run.verdict", "alias.refused", "alias.override"]
