"""`modelcompat report` in every format and `modelcompat history`, on a store holding a real run and its history."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from modelcompat.render.html import slug

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def test_the_regressed_run_is_stored_with_its_final_verdict(history_store, invoke) -> None:
    store, run_ids = history_store
    assert store.run(run_ids[5]).verdict == "fail"  # a pass → fail: the run's own fail takes precedence
    code, out, _ = invoke("report", run_ids[5], "--format", "json", "--store", store.uri)
    assert code == 0
    doc = json.loads(out)
    assert doc["baseline_run_id"] == run_ids[0] and doc["verdict"] == "fail"
    kinds = {(g["kind"], g["severity"]) for g in doc["regressions"]}
    assert ("status", "critical") in kinds and ("metric", "major") in kinds
    for g in doc["regressions"]:
        assert {"cell", "validator", "kind", "from", "to", "metric", "delta_pct", "severity", "remediation"} <= set(g)
    # the drifting runs stayed within thresholds and noise
    assert json.loads(invoke("report", run_ids[3], "--format", "json", "--store", store.uri)[1])["regressions"] == []


def test_markdown_lists_regressions_first_with_remediation(history_store, invoke) -> None:
    store, run_ids = history_store
    code, out, _ = invoke("report", run_ids[5], "--format", "md", "--store", store.uri)
    assert code == 0
    assert out.index("regression(s) against baseline run") < out.index("| cell | validator | status |")
    assert "re-export the model with the contracted output head" in out and "🟥 critical" in out


def test_junit_parses_with_one_testcase_per_check(history_store, tmp_path: Path, invoke) -> None:
    store, run_ids = history_store
    out = tmp_path / "junit.xml"
    code, _, err = invoke("report", run_ids[5], "--format", "junit", "--out", str(out), "--store", store.uri)
    assert code == 0 and "written to" in err
    root = ET.parse(out).getroot()
    cases = root.findall("./testsuite/testcase")
    reports = store.reports(run_ids[5])
    assert len(cases) == len(reports) == int(root.get("tests"))
    assert {(c.get("classname"), c.get("name")) for c in cases} == set(zip(reports["cell"], reports["validator"]))
    failures = [c for c in cases if c.find("failure") is not None]
    types = {c.find("failure").get("type") for c in failures}
    assert "io_contract.shape_mismatch" in types and "regression" in types
    assert int(root.get("failures")) == len(failures)
    assert len([c for c in cases if c.find("skipped") is not None]) == (reports["status"] == "skipped").sum()
    suite_props = {p.get("name"): p.get("value") for p in root.findall("./testsuite/properties/property")}
    assert suite_props["baseline_run_id"] == run_ids[0] and len(suite_props["model.sha256"]) == 64
    case_props = {p.get("name") for p in cases[0].findall("./properties/property")}
    assert "validator_version" in case_props


def test_history_prints_the_trend(history_store, invoke) -> None:
    store, run_ids = history_store
    code, out, _ = invoke("history", store.run(run_ids[0]).model_name, "--metric", "p95_latency_ms",
                       "--validator", "latency", "--store", store.uri)
    assert code == 0, out
    assert run_ids[0] in out and run_ids[5] in out and "★" in out and "trend" in out
    code, _, err = invoke("history", "no-such-model", "--store", store.uri)
    assert code == 2 and "models in the store" in err


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: `make test` installs it (apt-get install chromium)"
    return path


def _browser(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(profile)}, check=False)


def test_html_report_renders_in_headless_chromium(history_store, tmp_path: Path, invoke) -> None:
    store, run_ids = history_store
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "report.html"
    code, _, _ = invoke("report", run_ids[5], "--format", "html", "--out", str(page), "--store", store.uri)
    assert code == 0
    text = page.read_text()
    # self-contained: no script, no external URL (the SVG namespace is an identifier, not a fetch)
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text

    dom = _browser(["--dump-dom", page.as_uri()], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'id="heatmap"' in html and 'id="regressions"' in html and "<polyline" in html
    reports = store.reports(run_ids[5])
    for cell, validator in zip(reports["cell"], reports["validator"]):
        assert f'id="hm-{slug(cell)}--{slug(validator)}"' in html
        assert f'id="cell-{slug(cell)}"' in html
    assert 'data-severity="critical"' in html and 'data-severity="major"' in html
    assert 'id="trend-p95-latency-ms"' in html

    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = _browser([f"--screenshot={shot}", "--window-size=1400,1000", "--hide-scrollbars", page.as_uri()],
                      tmp_path / "profile-shot")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_json_is_the_stored_summary_model_and_names_an_unknown_run(history_store, invoke) -> None:
    from modelcompat.results.summary import StoredRunSummary

    store, run_ids = history_store
    code, out, _ = invoke("report", run_ids[5], "--format", "json", "--store", store.uri)
    assert code == 0
    summary = StoredRunSummary.model_validate_json(out)
    assert summary.to_json_text() == out  # the model is the document, field order included
    assert summary.code_version and {g.severity for g in summary.regressions} >= {"critical", "major"}
    assert len(summary.changes) >= len(summary.regressions)
    code, _, err = invoke("report", "no-such-run", "--store", store.uri)
    assert code == 2
    assert "no-such-run" in err and run_ids[5] in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one line naming the run, the store and the recent runs
    code, _, err = invoke("report", run_ids[0], "--format", "pdf", "--store", store.uri)
    assert code == 2 and "--format" in err and "html, md, json, junit" in err
