"""`modelcompat report` in every format, `history`, `baseline` commands, on a store holding a real run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelcompat.cli.app import app
from modelcompat.render.html import slug
from modelcompat.store import Store
from support.reportdata import build_store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
runner = CliRunner()


@pytest.fixture(scope="module")
def history_store(demo_package, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report-store") / "store"
    store, run_ids = build_store(root, demo_package)
    return store, run_ids


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_regressed_run_is_stored_with_its_final_verdict(history_store) -> None:
    store, run_ids = history_store
    assert store.run(run_ids[5]).verdict == "fail"  # a pass → fail: the run's own fail takes precedence
    code, out, _ = cli("report", run_ids[5], "--format", "json", "--store", store.uri)
    assert code == 0
    doc = json.loads(out)
    assert doc["baseline_run_id"] == run_ids[0] and doc["verdict"] == "fail"
    kinds = {(g["kind"], g["severity"]) for g in doc["regressions"]}
    assert ("status", "critical") in kinds and ("metric", "major") in kinds
    for g in doc["regressions"]:
        assert {"cell", "validator", "kind", "from", "to", "metric", "delta_pct", "severity", "remediation"} <= set(g)
    # the drifting runs stayed within thresholds and noise
    assert json.loads(cli("report", run_ids[3], "--format", "json", "--store", store.uri)[1])["regressions"] == []


def test_markdown_lists_regressions_first_with_remediation(history_store) -> None:
    store, run_ids = history_store
    code, out, _ = cli("report", run_ids[5], "--format", "md", "--store", store.uri)
    assert code == 0
    assert out.index("regression(s) against baseline run") < out.index("| cell | validator | status |")
    assert "re-export the model with the contracted output head" in out and "🟥 critical" in out


def test_junit_parses_with_one_testcase_per_check(history_store, tmp_path: Path) -> None:
    store, run_ids = history_store
    out = tmp_path / "junit.xml"
    code, _, err = cli("report", run_ids[5], "--format", "junit", "--out", str(out), "--store", store.uri)
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


def test_history_prints_the_trend(history_store) -> None:
    store, run_ids = history_store
    code, out, _ = cli("history", store.run(run_ids[0]).model_name, "--metric", "p95_latency_ms",
                       "--validator", "latency", "--store", store.uri)
    assert code == 0, out
    assert run_ids[0] in out and run_ids[5] in out and "★" in out and "trend" in out
    code, _, err = cli("history", "no-such-model", "--store", store.uri)
    assert code == 2 and "models in the store" in err


def test_baseline_commands(history_store, tmp_path: Path) -> None:
    store, run_ids = history_store
    copy = tmp_path / "store"
    shutil.copytree(store.uri, copy)
    model = store.run(run_ids[0]).model_name
    code, out, _ = cli("baseline", "promote", run_ids[2], "--cells", "host-ort/*", "--store", str(copy))
    assert code == 0 and f"promoted run {run_ids[2]}" in out
    # the real run has failing checks (latency budgets): no run passes yet
    code, _, err = cli("baseline", "promote", "--rule", "last-passing", "--model", model, "--store", str(copy))
    assert code == 2 and "has verdict pass" in err
    passing = [r.model_copy(update={"run_id": "later-pass"}) for r in Store(copy).load_reports(run_ids[4])
               if r.status.value != "fail"]
    record = Store(copy).run(run_ids[4]).model_copy(update={"run_id": "later-pass", "verdict": "pass",
                                                            "n_reports": None})
    Store(copy).append_run(record, passing)
    code, out, _ = cli("baseline", "promote", "--rule", "last-passing", "--model", model, "--store", str(copy))
    assert code == 0 and "rule last-passing" in out and "later-pass" in out
    code, out, _ = cli("baseline", "show", model, "--store", str(copy))
    assert code == 0 and "later-pass" in out and "promotions" in out and run_ids[2] in out
    assert cli("baseline", "promote", "nope", "--store", str(copy))[0] == 2
    assert cli("baseline", "promote", "--rule", "last-passing", "--store", str(copy))[0] == 2
    assert cli("baseline", "show", "ghost", "--store", str(copy))[0] == 2
    assert cli("report", "nope", "--store", str(copy))[0] == 2
    assert cli("report", run_ids[0], "--format", "pdf", "--store", str(copy))[0] == 2


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: `make test` installs it (apt-get install chromium)"
    return path


def _browser(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(profile)})


def test_html_report_renders_in_headless_chromium(history_store, tmp_path: Path) -> None:
    store, run_ids = history_store
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "report.html"
    code, _, _ = cli("report", run_ids[5], "--format", "html", "--out", str(page), "--store", store.uri)
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


def test_junit_maps_every_status() -> None:
    from modelcompat.render.junit import render_junit
    from modelcompat.results.report import Finding, Report, Severity, Status
    from modelcompat.results.summary import run_summary

    reports = [Report(run_id="r", cell="rt/cpu/b", runtime="rt", runtime_version="1", hardware="cpu", backend="b",
                      validator=s.value, validator_version="1", status=s,
                      findings=(Finding(code=f"{s.value}.x", severity=Severity.INFO if s in (Status.PASS, Status.SKIPPED)
                                        else Severity.ERROR, message="m <&> \"q\""),)) for s in Status]
    doc = run_summary(run_id="r", model={"name": "m", "version": "1", "sha256": "0" * 64},
                      matrix={"name": "default", "path": "x"}, reports=reports, started_at="s", finished_at="f",
                      trigger="cli", flow_run_id=None)
    root = ET.fromstring(render_junit(doc).split("\n", 1)[1])
    by_name = {c.get("name"): c for c in root.iter("testcase")}
    assert by_name["fail"].find("failure") is not None and by_name["error"].find("error") is not None
    assert by_name["skipped"].find("skipped") is not None
    assert by_name["pass"].find("failure") is None and by_name["warn"].find("failure") is None
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "1")
