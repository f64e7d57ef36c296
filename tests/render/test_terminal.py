"""The terminal rendering of a run: the matrix fitted to the console (full table, compact glyphs with a legend,
or one block per cell), and the findings under it, each root cause once per cell with what it blocked."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from modelcompat.execution.harness import CellJob, check_cell
from modelcompat.render.terminal import GLYPHS, NOT_CHECKED, matrix_table, print_summary, short_names
from modelcompat.results.summary import RunSummary, run_summary
from modelcompat.validators.registry import Registry
from support.pkgvariants import HOST_ORT, ORT_116
from support.reportdata import sample_summary
from support.tinyonnx import FLOAT, one_node, onnx_package

WIDTHS = (60, 80, 100, 160, 240)
FAST_LATENCY = {"time_budget_s": 0.1, "concurrency": [1]}


def _printed(summary: RunSummary, width: int = 200, **console: object) -> str:
    out = Console(file=io.StringIO(), width=width, color_system=None, **console)
    print_summary(out, summary)
    return out.file.getvalue()


@pytest.fixture(scope="module")
def real_summary(demo_package, tmp_path_factory) -> RunSummary:
    """A real run of every installed validator: the demo package on the host's onnxruntime, and a model that
    onnxruntime 1.16 refuses (IR 10, opset 21) on that cell."""
    registry = Registry.discover()
    ir10 = onnx_package(demo_package, tmp_path_factory.mktemp("ir10") / "pkg",
                        one_node("Softmax", FLOAT, opset=21, ir_version=10))
    reports = []
    for package, cell in ((demo_package, HOST_ORT), (ir10, ORT_116)):
        job = CellJob(cell=cell, package_root=str(package.root), validators=tuple(registry.names), run_id="r-real",
                      params={"latency": FAST_LATENCY})
        reports += check_cell(job, registry)
    return run_summary(run_id="r-real", flow_run_id=None, trigger="cli", started_at="2026-11-22T02:15:00+00:00",
                       finished_at="2026-11-22T02:16:00+00:00",
                       model={"name": "demo-mlp", "version": "1.0.0", "sha256": "ab" * 32},
                       matrix={"name": "default", "path": "matrices/default.yaml"}, reports=reports)


def _shown_statuses(out: str, summary: RunSummary) -> dict[tuple[str, str], str]:
    """(cell, validator) -> the status the output shows, read back from whichever layout was printed."""
    lines = out.splitlines()
    cells = list(dict.fromkeys(r.cell for r in summary.reports))
    validators = list(dict.fromkeys(r.validator for r in summary.reports))
    glyph_status = {g: s for s, g in GLYPHS.items()} | {NOT_CHECKED: "not checked"}
    keys = short_names(validators)
    shown: dict[tuple[str, str], str] = {}
    header = next((ln for ln in lines if ln.split() and ln.split()[0] in ("cell", "┃")), "")
    if "┃" in header:  # the full table: status words under validator names
        names = [c.strip() for c in header.strip("┃").split("┃")][2:]
        for ln in lines:
            parts = [c.strip() for c in ln.strip("│").split("│")]
            if parts and parts[0] in cells:
                for v, word in zip(names, parts[2:], strict=True):
                    shown[(parts[0], v)] = word.split(" ")[0]
        return shown
    if header:  # compact: glyphs under keys
        order = [next(v for v in validators if keys[v] == k) for k in header.split()[-len(validators):]]
        for ln in lines:
            tokens = ln.split()
            if tokens and tokens[0] in cells:
                for v, glyph in zip(order, tokens[-len(validators):], strict=True):
                    shown[(tokens[0], v)] = glyph_status[glyph.rstrip("*")]
        return shown
    cell = None  # blocks: a cell's line, then `<glyph> <validator>` entries
    for ln in lines:
        first = ln.split()[0] if ln.split() else ""
        if first in cells:
            cell = first
        elif cell and ln.startswith("  "):
            for glyph, v in re.findall(r"(\S+) (\w+)", ln):  # `. name`: not checked
                if v in validators and glyph.rstrip("*") in glyph_status:
                    shown[(cell, v)] = glyph_status[glyph.rstrip("*")]
        else:
            cell = None
    return shown


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("which", ["real", "sample"])
def test_the_matrix_is_whole_at_every_width(real_summary, width, which) -> None:
    summary = real_summary if which == "real" else sample_summary()
    out = _printed(summary, width)
    assert max(len(line) for line in out.splitlines()) <= width
    assert "…" not in out  # rich cut nothing
    words = set(re.findall(r"[\w./*-]+", out))
    for r in summary.reports:
        assert r.cell in words and r.validator in words, (r.cell, r.validator)  # whole, at least in the key
    shown = _shown_statuses(out, summary)
    expected = {(r.cell, r.validator): r.status.value for r in summary.reports}
    assert {k: v for k, v in shown.items() if v not in ("not checked", "-")} == expected
    cells = {r.cell for r in summary.reports}
    validators = {r.validator for r in summary.reports}
    assert set(shown) == {(c, v) for c in cells for v in validators}  # every cell of the matrix says something


def test_at_80_columns_a_dozen_validators_get_glyphs_keys_and_a_legend(real_summary) -> None:
    out = _printed(real_summary, 80)
    assert "✓ pass  ! warn  ✗ fail  E error  - skipped  * cached  . not checked" in out
    assert "lo loadability" in out and "ic io_contract" in out


def test_the_full_table_when_it_fits() -> None:
    out = _printed(sample_summary(), 160)
    assert "pass (cached)" in out and "┃ loadability ┃" in out
    table = matrix_table(sample_summary())
    assert [c.header for c in table.columns] == ["cell", "runtime", "loadability", "latency", "io_contract"]
    assert table.row_count == 3 and "verdict: fail" in str(table.title)


def test_short_names_are_distinct_and_short() -> None:
    names = Registry.discover().names
    keys = short_names(names)
    assert len(set(keys.values())) == len(names) and all(len(k) == 2 for k in keys.values())
    assert keys["io_contract"] == "ic" and keys["latency"] == "la"
    assert short_names(["latency", "layout", "la_x"]) == {"latency": "la", "layout": "lay", "la_x": "lx"}


def test_findings_follow_the_matrix_with_their_fix_and_skip_reasons_once() -> None:
    out = _printed(sample_summary())
    assert "fail  ort-1.16/cpu/ort-cpu io_contract io_contract.shape_mismatch: output 0 has shape" in out
    assert "      fix: re-export the model with the contracted output head" in out
    assert "error ort-1.18/cpu/ort-cpu loadability probe.crashed" in out
    assert out.count("no worker offers GPU=1") == 1  # two skipped checks, one reason line
    assert out.rstrip().splitlines()[-1] == "run r1: pass 2, warn 1, fail 1, error 1, skipped 2 -> verdict fail"


def test_a_model_that_does_not_load_is_one_line_with_what_it_blocked(real_summary) -> None:
    out = _printed(real_summary, 200)
    cell = ORT_116.id
    root = [ln for ln in out.splitlines() if "loadability.ir_version_unsupported" in ln]
    assert len(root) == 1 and root[0].startswith(f"fail  {cell} loadability ")
    entries = re.split(r"\n(?=fail |warn |error |skipped |run )", out)
    assert sum("ONNXRuntimeError" in e for e in entries if e.startswith("fail ")) == 1  # the load error: one fail
    blocked = sorted(r.validator for r in real_summary.reports if r.cell == cell and r.findings
                     and r.findings[0].code.endswith(".blocked"))
    assert set(blocked) >= {"io_contract", "latency", "determinism", "data_contract", "hardware_support"}
    assert f"      blocks (skipped): {', '.join(blocked)}" in out
    assert "blocked by" not in out  # said by the root-cause line, not once per check


def test_without_a_terminal_or_colour_the_output_is_plain_text(real_summary, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("COLUMNS", raising=False)
    console = Console(file=io.StringIO())  # not a tty: rich's default 80 columns
    print_summary(console, real_summary)
    out = console.file.getvalue()
    assert console.width == 80 and "\x1b[" not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_console_without_utf8_gets_ascii_glyphs(real_summary) -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="replace")
    print_summary(Console(file=stream, width=80, color_system=None), real_summary)
    stream.flush()
    out = raw.getvalue().decode("ascii")
    assert "+ pass  ! warn  x fail  E error  - skipped" in out
