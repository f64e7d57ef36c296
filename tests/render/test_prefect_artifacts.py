"""The markdown summary (Prefect artifact, `report --format md`) and the Prefect table rows."""
from __future__ import annotations

from modelcompat.render.prefect_artifacts import markdown_summary, regressions_markdown, table_rows
from modelcompat.results.report import Report, Status
from support.reportdata import sample_summary


def test_markdown_puts_the_verdict_and_regressions_before_the_problems() -> None:
    md = markdown_summary(sample_summary())
    lines = md.splitlines()
    assert lines[0] == "# demo-mlp 1.0.0: **fail**"
    assert "pass: 2 · warn: 1 · fail: 1 · error: 1 · skipped: 2" in lines
    assert md.index("2 regression(s) against baseline run `r0`") < md.index("| cell | validator | status |")
    # most severe first; a metric change with its delta; the note after a <br>
    assert md.index("🟥 critical") < md.index("🟧 major")
    assert "`p95_latency_ms` 4.12 → 5.31 (+28.9%)<br>warn > 10%, fail > 25%" in md
    # problems: fail, then error, then warn; a pipe in a message is escaped, skipped checks are not listed
    problems = [line for line in lines if line.startswith("| `")]  # regression rows start with their severity
    assert [p.split(" | ")[2] for p in problems] == ["❌ fail", "💥 error", "⚠️ warn"]
    assert "[1, 3] \\| not 4" in md and "no worker offers" not in md


def test_markdown_without_a_baseline_says_how_to_get_one() -> None:
    summary = sample_summary(baseline=False)
    assert regressions_markdown(summary)[0].startswith("No baseline for this model yet")
    assert "modelcompat baseline promote RUN_ID" in markdown_summary(summary)


def test_table_rows_are_one_per_cell_with_a_column_per_validator() -> None:
    def report(cell: str, validator: str, status: Status, version: str | None) -> Report:
        return Report(run_id="r", cell=cell, runtime="rt", runtime_version=version, hardware="cpu", backend="b",
                      validator=validator, validator_version="1", status=status)

    rows = table_rows([report("a", "integrity", Status.PASS, None), report("a", "latency", Status.FAIL, "ort 1"),
                       report("b", "integrity", Status.SKIPPED, None)])
    assert rows == [{"cell": "a", "runtime_version": "ort 1", "integrity": "pass", "latency": "fail"},
                    {"cell": "b", "runtime_version": "", "integrity": "skipped"}]
