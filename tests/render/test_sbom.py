"""build_sbom on its own: what ONNX files say about themselves, and a document the CycloneDX schema accepts even
with no cell environment (every cell skipped)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from modelcompat.render.sbom import build_sbom, onnx_facts
from modelcompat.store import RunRecord


def test_onnx_facts_come_from_the_file_without_its_weights(demo_package) -> None:
    facts = onnx_facts(str(demo_package.resolve(demo_package.artifact("onnx").path)))
    assert facts["producer_name"] == "pytorch" and facts["ir_version"] >= 7 and facts["opsets"].startswith("ai.onnx=")


def test_a_run_with_no_cell_environment_is_still_a_valid_bom(demo_package) -> None:
    now = datetime(2026, 12, 5, tzinfo=timezone.utc)
    record = RunRecord(run_id="20261205T000000Z-sbom00", trigger="cli", matrix="m", model_name="demo-mlp",
                       model_version="1.0.0", model_sha256=demo_package.primary_sha256, verdict="pass",
                       started_at=now, finished_at=now)
    bom = json.loads(build_sbom(record, demo_package, []))
    assert [c["type"] for c in bom["components"]] == ["file"] * len(bom["components"])
    props = {p["name"]: p["value"] for p in bom["metadata"]["component"]["properties"]}
    assert props["modelcompat:run_id"] == record.run_id and props["modelcompat:verdict"] == "pass"
