"""The terminal rendering of a run: the cells × validators table and one line per finding."""
from __future__ import annotations

import io

from rich.console import Console

from modelcompat.render.terminal import matrix_table, print_summary
from support.reportdata import sample_summary


def _printed(summary) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_summary(console, summary)
    return console.file.getvalue()


def test_the_table_has_a_row_per_cell_and_a_column_per_validator() -> None:
    table = matrix_table(sample_summary())
    assert [c.header for c in table.columns] == ["cell", "runtime", "loadability", "latency", "io_contract"]
    assert table.row_count == 3
    assert "verdict: fail" in str(table.title)


def test_findings_follow_the_table_with_their_fix_and_skip_reasons_once() -> None:
    out = _printed(sample_summary())
    assert "pass (cached)" in out  # the reused latency check
    assert "fail  ort-1.16/cpu/ort-cpu io_contract io_contract.shape_mismatch: output 0 has shape" in out
    assert "      fix: re-export the model with the contracted output head" in out
    assert "error ort-1.18/cpu/ort-cpu loadability probe.crashed" in out
    assert out.count("no worker offers GPU=1") == 1  # two skipped checks, one reason line
    assert out.rstrip().splitlines()[-1] == "run r1: pass 2, warn 1, fail 1, error 1, skipped 2 -> verdict fail"
