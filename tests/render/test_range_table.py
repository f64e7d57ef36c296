"""A stored range for people: the per-release table and the HTML report's section."""
from __future__ import annotations

import io

from rich.console import Console

from modelcompat.ranges.records import RangeRecord
from modelcompat.render.html import render_html
from modelcompat.render.range_table import html_rows, probes_table
from support.reportdata import sample_summary


def _record(**changes: object) -> RangeRecord:
    base = dict(model="m", model_version="1", artifact_sha256="ab", runtime="onnxruntime", hardware="cpu",
                backend="ort-cpu", validators=["loadability"], index_url="https://pypi.org/simple",
                releases=["1.16.3", "1.17.3", "1.18.0", "1.19.2"], min="1.18.0", max="1.19.2", holes=[],
                boundaries=[{"side": "lower", "release": "1.17.3", "status": "fail", "passing": "1.18.0",
                             "finding": "loadability.opset_unsupported, ai.onnx 21 > 20 <b>"}],
                probes=[{"release": "1.19.2", "status": "pass", "finding": None, "reused": False, "key": "k1"},
                        {"release": "1.17.3", "status": "fail", "reused": True, "key": "k2",
                         "finding": "loadability.opset_unsupported, ai.onnx 21 > 20"},
                        {"release": "1.18.0", "status": "pass", "finding": None, "reused": False, "key": "k3"}])
    return RangeRecord(**{**base, **changes})  # type: ignore[arg-type]


def test_the_table_lists_probed_releases_oldest_first() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(probes_table(_record()))
    lines = [line for line in console.file.getvalue().splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["1.17.3", "1.18.0", "1.19.2"]
    assert "stored" in lines[0] and "ai.onnx 21 > 20" in lines[0] and " no " in lines[0]
    assert " run " in lines[1] and " yes " in lines[1]
    assert "3 of 4 releases probed" in console.file.getvalue()
    skipped = _record(probes=[{"release": "1.19.2", "status": "skipped", "finding": "every check was skipped",
                               "reused": False, "key": "k"}])
    console.print(probes_table(skipped))  # a status without a colour of its own renders too
    assert "skipped" in console.file.getvalue()


def test_the_html_rows_say_the_range_and_escape_findings() -> None:
    html = html_rows([_record()])
    assert "onnxruntime &gt;=1.18.0, &lt;=1.19.2 (holes: none)" in html
    assert "lower: 1.17.3 (fail) loadability.opset_unsupported, ai.onnx 21 &gt; 20 &lt;b&gt;" in html
    assert html_rows([]) == ""


def test_the_report_has_a_ranges_section_only_when_a_range_is_stored() -> None:
    assert 'id="ranges"' not in render_html(sample_summary())
    page = render_html(sample_summary(), None, [_record()])
    assert '<section id="ranges"><h2>Compatibility ranges</h2>' in page and "&gt;=1.18.0" in page
