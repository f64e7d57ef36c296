"""The shipped onnxruntime capability table: well-formed, true for real releases (probed in their venvs: 1.16.3,
1.18.1 and the newest, from the env cache the matrices share), and the one upgrade remediation built from it."""
from __future__ import annotations

import json

import pytest

from modelcompat.validators.capabilities import (
    CAPABILITY_FORMAT,
    LEARNED_SOURCE,
    custom_domain_fix,
    load_table,
    oldest_supporting,
    probe_release,
    registered_anywhere,
    releases,
    upgrade_remediation,
    version_key,
)

TABLE = load_table()
ROWS = {r["version"]: r for r in TABLE["releases"]}
NEWEST = TABLE["releases"][-1]["version"]
SOURCE = f"table of releases shipped with modelcompat, {TABLE['generated']}"


def test_the_table_is_dated_says_how_it_was_made_and_covers_1_15_to_the_newest() -> None:
    assert TABLE["format"] == CAPABILITY_FORMAT and TABLE["generated"] and "--refresh-table" in TABLE["method"]
    versions = [r["version"] for r in TABLE["releases"]]
    assert versions == sorted(versions, key=version_key) and versions[0] == "1.15.0"
    assert {"1.16.3", "1.18.0", "1.18.1", "1.31.1"} <= set(versions)
    for older, newer in zip(TABLE["releases"], TABLE["releases"][1:], strict=False):
        # A later release never accepts less: a row that did would be a probing mistake.
        assert newer["max_ir_version"] >= older["max_ir_version"], (older, newer)
        for domain, limit in older["max_opset"].items():
            assert newer["max_opset"].get(domain, 0) >= limit, (domain, older["version"], newer["version"])
    # Every release registers the standard and Microsoft domains; custom ones are not in the table.
    assert all({"ai.onnx", "ai.onnx.ml", "com.microsoft"} <= set(r["max_opset"]) for r in TABLE["releases"])
    assert registered_anywhere("ai.onnx.contrib") is None and registered_anywhere("com.example") is None


@pytest.mark.parametrize("version", ["1.16.3", "1.18.1", NEWEST])
def test_the_table_agrees_with_the_real_release(version: str) -> None:
    caps = probe_release(version)  # builds (or reuses) the release's venv and loads the probe models there
    assert caps["version"] == version
    assert {"max_ir_version": caps["max_ir_version"], "max_opset": caps["max_opset"]} == \
        {"max_ir_version": ROWS[version]["max_ir_version"], "max_opset": ROWS[version]["max_opset"]}


def test_remediation_names_the_oldest_release_that_supports_the_whole_model() -> None:
    # onnxruntime 1.18.0 is the first with IR 10 (and ai.onnx 21): a dynamo export (IR 10, opset 20) loads there.
    text = upgrade_remediation({"ir": 10, "ai.onnx": 20}, "1.16.3")
    assert text == f"onnxruntime >= 1.18.0 supports IR 10 and ai.onnx opset 20 ({SOURCE}); this cell runs 1.16.3"
    # Every need counts: ai.onnx.ml 4 arrived in 1.17.0, IR 10 only in 1.18.0.
    assert upgrade_remediation({"ir": 9, "ai.onnx.ml": 4}, "1.16.3").startswith("onnxruntime >= 1.17.0 supports")
    assert oldest_supporting({"ir": 10, "ai.onnx": 20, "com.microsoft": 1}).version == "1.18.0"


def test_nothing_supports_it_and_custom_domains_are_no_upgrade() -> None:
    assert upgrade_remediation({"ir": 99}, "1.16.3").startswith(
        f"no onnxruntime release known to modelcompat (up to {NEWEST}; {SOURCE}) supports IR 99")
    # A custom domain is left to the custom-op library: the upgrade is judged on the rest.
    assert upgrade_remediation({"ir": 10, "ai.onnx": 20, "com.example": 1}, "1.16.3").startswith(
        "onnxruntime >= 1.18.0 supports IR 10 and ai.onnx opset 20 (")
    fix = custom_domain_fix("ai.onnx.contrib")
    assert "SessionOptions.register_custom_ops_library" in fix and "onnxruntime_extensions" in fix


def test_what_this_machine_learned_extends_the_table(tmp_path) -> None:
    learned = {"format": CAPABILITY_FORMAT, "runtime": "onnxruntime", "version": "9.0.0", "max_ir_version": 30,
               "max_opset": {"ai.onnx": 40, "ai.onnx.ml": 9, "com.microsoft": 1}}
    (tmp_path / "onnxruntime-9.0.0.json").write_text(json.dumps(learned))
    (tmp_path / "onnxruntime-0.1.0.json").write_text(json.dumps({**learned, "format": 1, "version": "0.1.0"}))
    assert [r.version for r in releases(tmp_path)][-1] == "9.0.0"
    assert "0.1.0" not in {r.version for r in releases(tmp_path)}  # another format: re-learned, never cited
    release = oldest_supporting({"ir": 20, "ai.onnx": 35}, tmp_path)
    assert release.version == "9.0.0" and release.source == LEARNED_SOURCE
    assert upgrade_remediation({"ir": 20}, "1.16.3", tmp_path) == \
        f"onnxruntime >= 9.0.0 supports IR 20 ({LEARNED_SOURCE}); this cell runs 1.16.3"
    # A release the table has, learned identically here, is still cited from the table.
    same = {**learned, "version": "1.18.0", **{k: ROWS["1.18.0"][k] for k in ("max_ir_version", "max_opset")}}
    (tmp_path / "onnxruntime-1.18.0.json").write_text(json.dumps(same))
    assert oldest_supporting({"ir": 10}, tmp_path).source == SOURCE
