"""The self-contained HTML report: verdict, regressions, heatmap, findings and trends, with no external asset."""
from __future__ import annotations

import html as html_lib
from datetime import UTC, datetime, timedelta

import pandas as pd

from modelcompat.render.html import render_html, slug
from modelcompat.results.summary import StoredRunSummary
from support.reportdata import sample_summary


def _history() -> pd.DataFrame:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [("r0", t0, "ort-1.16/cpu/ort-cpu", "latency", "p95_latency_ms", 4.12),
            ("r1", t0 + timedelta(days=1), "ort-1.16/cpu/ort-cpu", "latency", "p95_latency_ms", 5.31)]
    return pd.DataFrame(rows, columns=["run_id", "started_at", "cell", "validator", "metric", "value"])


def test_the_page_shows_verdict_heatmap_regressions_and_findings() -> None:
    page = render_html(sample_summary())
    assert '<span class="verdict v-fail" id="verdict">fail</span>' in page
    for report in sample_summary().reports:
        cell_id = f'id="hm-{slug(report.cell)}--{slug(report.validator)}"'
        assert cell_id in page and f'data-status="{report.status.value}"' in page
    assert 'id="hm-ort-1-18-cuda-ort-cuda--loadability"' not in page  # a check that did not exist: blank cell
    assert 'class="hm missing"' in page
    assert 'data-severity="critical"' in page and 'data-severity="major"' in page
    assert "status pass → fail" in page and "+28.9%" in page
    assert html_lib.escape("output 0 has shape [1, 3] | not 4") in page
    assert "No metric history yet." in page
    assert "<script" not in page and "https://" not in page


def test_trends_are_drawn_from_the_history_and_the_stored_code_version_is_shown() -> None:
    summary = sample_summary()
    stored = StoredRunSummary(**dict(summary), code_version="9.8.7", changes=summary.regressions)
    page = render_html(stored, _history())
    assert 'id="trend-p95-latency-ms"' in page and "<polyline" in page
    assert "modelcompat 9.8.7 · self-contained report" in page


def test_without_a_baseline_the_page_says_how_to_promote_one() -> None:
    page = render_html(sample_summary(baseline=False))
    assert "No baseline for this model yet" in page and 'id="regressions"' not in page


def test_a_blocked_check_says_what_blocked_it_and_the_findings_list_has_the_root_cause_once() -> None:
    from test_junit import _blocked_run

    page = render_html(_blocked_run())
    cell = page.split('id="hm-ort-1-16-cpu-ort-cpu--io-contract"')[1].split(">")[0]
    assert 'data-status="skipped"' in cell
    assert html_lib.escape("blocked by loadability.ir_version_unsupported") in cell  # the tooltip
    findings = page.split('id="findings"')[1].split("</table>")[0]
    assert findings.count("loadability.ir_version_unsupported") == 1 and "io_contract.blocked" not in findings
