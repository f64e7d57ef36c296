"""The `modelcompat.verdict` event: its resource (the model version, labelled with verdict and run id) and payload,
and a run recorded over the REST API posting it to a real Prefect server, where it can be read back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelcompat.orchestration.verdict_event import VERDICT_EVENT, event_document, verdict_event
from support.reportdata import sample_summary
from support.servers import api_json, wait_until

CLI = [sys.executable, "-m", "modelcompat.cli"]


def test_the_event_names_the_model_version_and_its_verdict() -> None:
    summary = sample_summary()
    event = verdict_event(summary, flow_run_id="f-1")
    assert event["event"] == VERDICT_EVENT == "modelcompat.verdict"
    assert event["resource"]["prefect.resource.id"] == "modelcompat.model.demo-mlp.1.0.0"
    assert event["resource"]["modelcompat.verdict"] == "fail" and event["resource"]["modelcompat.run_id"] == "r1"
    assert {k: event["payload"][k] for k in ("model", "version", "verdict", "run_id")} == {
        "model": "demo-mlp", "version": "1.0.0", "verdict": "fail", "run_id": "r1"}
    assert event["payload"]["regressions"] == 2 and event["payload"]["baseline_run_id"] == "r0"
    assert event["related"] == [{"prefect.resource.id": "prefect.flow-run.f-1", "prefect.resource.role": "flow-run"}]
    document = event_document(summary)
    assert document["id"] != event_document(summary)["id"] and document["occurred"].endswith("+00:00")
    json.dumps(document)  # what POST /events sends


def _events(api: str, run_id: str) -> list[dict]:
    page = api_json("POST", f"{api}/events/filter", json={"filter": {
        "event": {"name": [VERDICT_EVENT]}, "any_resource": {"labels": {"modelcompat.run_id": [run_id]}}},
        "limit": 10})
    return page["events"]


@pytest.mark.server
def test_a_run_recorded_over_rest_posts_its_verdict_event(prefect_server: str, demo_package, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_HOME": str(tmp_path / "home")}
    out = tmp_path / "summary.json"
    proc = subprocess.run([*CLI, "run", "--model", str(demo_package.root), "--cells", "host-ort/cpu/ort-cpu",
                           "--validators", "integrity", "--store", str(tmp_path / "store"), "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    (event,) = wait_until(lambda: _events(prefect_server, summary["run_id"]), 120, "the verdict event", interval=1)
    assert event["resource"]["prefect.resource.id"] == "modelcompat.model.demo-mlp.1.0.0"
    assert event["payload"]["verdict"] == "pass" and event["payload"]["run_id"] == summary["run_id"]
    related = {r["prefect.resource.id"] for r in event["related"]}
    assert f"prefect.flow-run.{summary['flow_run_id']}" in related  # the flow run that recorded it
