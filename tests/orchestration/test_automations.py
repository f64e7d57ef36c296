"""deployments/automations.yaml end to end on a real Prefect server: `modelcompat automations apply` points its
webhook at a local receiver; a passing run does not call it, a run through the check-matrix flow that regressed
against its baseline and a run recorded over REST that failed do, each with model, version, verdict and run id."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelcompat.orchestration.automations import AUTOMATIONS_FILE, block_names, load_automations, with_block_ids
from modelcompat.errors import InputError
from support.http_receiver import http_receiver
from support.pkgvariants import rehash, variant
from support.provenance_edits import set_pt2_torch_version
from support.servers import api_json, wait_until

CLI = [sys.executable, "-m", "modelcompat.cli"]


def test_the_shipped_file_is_a_prefect_automation_once_its_block_is_named() -> None:
    (automation,) = load_automations(AUTOMATIONS_FILE)
    assert block_names([automation]) == {"modelcompat-verdict-webhook"}
    resolved = with_block_ids(automation, lambda name: "5" * 32)
    (action,) = resolved["actions"]
    assert action["block_document_id"] == "5" * 32 and "block_name" not in action
    assert "block_name" in automation["actions"][0]  # the loaded file itself is left as it is
    assert resolved["trigger"]["match"]["modelcompat.verdict"] == ["fail", "regressed"]


def test_a_malformed_automation_names_its_field(tmp_path: Path) -> None:
    data = yaml.safe_load(AUTOMATIONS_FILE.read_text())
    data["automations"][0]["trigger"]["posture"] = "Sometimes"
    path = tmp_path / "automations.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as caught:
        load_automations(path)
    assert caught.value.field.startswith("automations[0].trigger") and caught.value.file == str(path)


def _cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _run(env: dict[str, str], package: Path, cells: str, validators: str, out: Path) -> dict:
    proc = _cli("run", "--model", str(package), "--cells", cells, "--validators", validators, "--json", str(out),
                "--workers", "1", env=env)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.mark.server
def test_the_webhook_is_called_on_fail_and_regressed_only(prefect_server: str, demo_package, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_HOME": str(tmp_path / "home"),
           "MODELCOMPAT_STORE": str(tmp_path / "store"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "DASK_LOGGING__DISTRIBUTED": "warning"}
    with http_receiver() as received:
        proc = _cli("automations", "apply", "--webhook-url", received.url, "--header", "X-Token=s3cret", env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "automation modelcompat-verdict-webhook created" in proc.stdout
        (automation,) = api_json("POST", f"{prefect_server}/automations/filter",
                                 json={"automations": {"name": {"any_": ["modelcompat-verdict-webhook"]}}})
        assert automation["enabled"] and automation["actions"][0]["type"] == "call-webhook"
        # applied twice: replaced by name, still one
        assert _cli("automations", "apply", "--webhook-url", received.url, "--header", "X-Token=s3cret",
                    env=env).returncode == 0
        autos = api_json("POST", f"{prefect_server}/automations/filter",
                         json={"automations": {"name": {"any_": ["modelcompat-verdict-webhook"]}}})
        assert len(autos) == 1

        # 1. pass, recorded over REST (one cell): the baseline of torch-eager's environment_parity
        passing = _run(env, demo_package.root, "host-torch/cpu/torch-eager", "environment_parity", tmp_path / "a.json")
        assert passing["verdict"] == "pass"
        assert _cli("baseline", "promote", passing["run_id"], "--reason", "test baseline", env=env).returncode == 0

        # 2. regressed, through the check-matrix flow (two cells: a Dask cluster): the .pt2 now says a newer torch
        #    saved it, so environment_parity warns where the baseline passed
        newer = variant(demo_package, tmp_path / "newer",
                        lambda folder, manifest: (set_pt2_torch_version(folder / "model.pt2", "2.99.0"),
                                                  rehash(folder, manifest)))
        regressed = _run(env, newer.root, "host-torch/cpu/torch-eager,host-torch/cpu/torch-export",
                         "environment_parity", tmp_path / "b.json")
        assert regressed["verdict"] == "regressed", regressed["regressions"]
        assert regressed["flow_run_id"]

        # 3. fail, recorded over REST: the ONNX artifact no longer matches its manifest hash
        def tamper(folder: Path, manifest: dict) -> None:
            manifest["artifacts"][0]["sha256"] = "0" * 64
        broken = variant(demo_package, tmp_path / "broken", tamper)
        failing = _run(env, broken.root, "host-ort/cpu/ort-cpu", "integrity", tmp_path / "c.json")
        assert failing["verdict"] == "fail"

        bodies = wait_until(lambda: (b := received.json_bodies()) and len(b) >= 2 and b, 180,
                            "two webhook calls", interval=1)
        by_run = {b["run_id"]: b for b in bodies}
        assert set(by_run) == {regressed["run_id"], failing["run_id"]}, bodies  # never the passing run
        assert by_run[regressed["run_id"]] == {
            "event": "modelcompat.verdict", "model": "demo-mlp", "version": "1.0.0", "verdict": "regressed",
            "run_id": regressed["run_id"], "matrix": "default", "regressions": len(regressed["regressions"]),
            "report": f"modelcompat report {regressed['run_id']} --format html",
            "occurred": by_run[regressed["run_id"]]["occurred"]}
        assert by_run[failing["run_id"]]["verdict"] == "fail" and by_run[failing["run_id"]]["model"] == "demo-mlp"
        with received.lock:
            headers = [h for _, h, _ in received.calls]
        assert all(h.get("X-Token") == "s3cret" and h.get("Content-Type") == "application/json" for h in headers)
        # the passing run's event reached the server too: the trigger, not a lost event, kept it from the webhook
        page = api_json("POST", f"{prefect_server}/events/filter", json={"filter": {
            "event": {"name": ["modelcompat.verdict"]},
            "any_resource": {"labels": {"modelcompat.run_id": [passing["run_id"]]}}}, "limit": 5})
        assert [e["payload"]["verdict"] for e in page["events"]] == ["pass"]
        # the flow's event relates its flow run
        page = api_json("POST", f"{prefect_server}/events/filter", json={"filter": {
            "event": {"name": ["modelcompat.verdict"]},
            "any_resource": {"labels": {"modelcompat.run_id": [regressed["run_id"]]}}}, "limit": 5})
        (event,) = page["events"]
        assert f"prefect.flow-run.{regressed['flow_run_id']}" in {r["prefect.resource.id"] for r in event["related"]}
