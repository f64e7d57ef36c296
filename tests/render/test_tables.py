"""The CLI's tables: each function rendered to text from what its command loads."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from rich.console import Console

from modelcompat.baseline.promotion import Promotion
from modelcompat.matrix.spec import load_matrix
from modelcompat.planning.plan import PlannedCheck
from modelcompat.render.tables import (
    baseline_tables,
    cells_table,
    history_table,
    plan_counts,
    plan_table,
    promotion_line,
    registry_table,
    sparkline,
    validators_table,
)
from modelcompat.settings import matrices_dir
from modelcompat.validators.registry import Registry

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def text(*renderables) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    for r in renderables:
        console.print(r)
    return console.file.getvalue()


def test_plan_table_and_counts() -> None:
    cells = load_matrix(matrices_dir() / "smoke.yaml").cells
    checks = [PlannedCheck(cell=cells[0], validator="integrity", decision="run", reason="no earlier report"),
              PlannedCheck(cell=cells[0], validator="latency", decision="cached", reason="same key as run r0"),
              PlannedCheck(cell=cells[1], validator="latency", decision="skipped", reason="no GPU")]
    out = text(plan_table(checks, "plan for m 1 × smoke"))
    assert "plan for m 1 × smoke" in out and f"{cells[0].id}" in out and "same key as run r0" in out
    assert plan_counts(checks) == "1 run, 1 cached, 1 skipped"


def test_cells_table_lists_every_cell_with_its_runtime() -> None:
    matrix = load_matrix(matrices_dir() / "smoke.yaml")
    out = text(cells_table(matrix.name, matrix.cells))
    assert f"smoke: {len(matrix.cells)} cells" in out
    for cell in matrix.cells:
        assert cell.id in out
    assert "CPUExecutionProvider" in out and "eager" in out


def test_validators_table_lists_the_installed_validators() -> None:
    registry = Registry.discover()
    out = text(validators_table(registry))
    for name, cls in registry.validators.items():
        assert name in out and cls.description[:30] in out


def test_baseline_tables_replay_the_promotions_in_order() -> None:
    first = Promotion(model="m", run_id="r1", promoted_at=T0, promoted_by="ann", rule="manual",
                      pointers=(("a/cpu/x", "latency", "pass"), ("a/cpu/x", "integrity", "pass")))
    second = Promotion(model="m", run_id="r2", promoted_at=T0 + timedelta(days=1), promoted_by="bot",
                       rule="last-passing", pointers=(("a/cpu/x", "latency", "warn"),))
    current, log = baseline_tables("m", [first, second])
    out = text(current, log)
    assert "baseline of m: 2 checks" in out
    rows = {line.split("│")[2].strip(): line for line in out.splitlines() if "a/cpu/x" in line}
    assert "r2" in rows["latency"] and "warn" in rows["latency"] and "r1" in rows["integrity"]
    assert out.index("2026-11-01 02:00:00") < out.index("2026-11-02 02:00:00")  # the log, oldest first
    assert promotion_line(second) == ("promoted run r2 as the baseline of m: 1 checks (warn 1) by bot "
                                      "(rule last-passing)")
    assert promotion_line(first).endswith("2 checks (pass 2) by ann")


def test_history_table_marks_the_baseline_and_the_changes() -> None:
    rows = [(f"r{i}", T0 + timedelta(days=i), "1.0", "pass", "a/cpu/x", "latency", "pass", "p95_latency_ms", v)
            for i, v in enumerate((10.0, 10.2, 20.0))]
    rows += [(f"r{i}", T0 + timedelta(days=i), "1.0", "pass", f"c{k}/cpu/x", "latency", "pass", "p95_latency_ms", 1.0)
             for i in range(3) for k in range(6)]
    frame = pd.DataFrame(rows, columns=["run_id", "started_at", "model_version", "verdict", "cell", "validator",
                                        "status", "metric", "value"])
    table, hidden = history_table("m", "p95_latency_ms", frame, {"r0"})
    out = text(table)
    assert hidden == 1  # seven series, six shown
    assert "r0 ★" in out and "r1 ★" not in out
    assert "10.2 (+2%)" in out and "20 (+96%)" in out
    assert out.splitlines()[-2].lstrip("│ ").startswith("trend")


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([1.0, 2.0, 3.0]) == "▁▅█"
    assert sparkline([5.0, 5.0]) == "▄▄"


def test_registry_table_lists_versions_oldest_first_with_aliases() -> None:
    data = {"versions": {"2.0": {"registered_at": "2026-11-02", "verdict": "fail", "run_id": "r2", "package": "/p2"},
                         "1.0": {"registered_at": "2026-11-01", "package": "/p1"}},
            "aliases": {"production": "1.0", "staging": "2.0"}}
    out = text(registry_table("/reg", [("m", data)]))
    assert "registry /reg" in out
    lines = [line for line in out.splitlines() if "/p" in line]
    assert "1.0" in lines[0] and "production" in lines[0] and " - " in lines[0]
    assert "2.0" in lines[1] and "staging" in lines[1] and "fail" in lines[1] and "r2" in lines[1]


def _all_tables() -> list:
    matrix = load_matrix(matrices_dir() / "nightly.yaml")
    cells = matrix.cells
    checks = [PlannedCheck(cell=cells[0], validator="numerical_parity", decision="run",
                           reason="no earlier report of this check"),
              PlannedCheck(cell=cells[-1], validator="latency", decision="cached",
                           reason="same key as run 20261101T020000Z-demo0")]
    promotion = Promotion(model="m", run_id="20261101T020000Z-demo0", promoted_at=T0, promoted_by="ann",
                          rule="manual", pointers=((cells[-1].id, "numerical_parity", "pass"),))
    rows = [(f"2026110{i}T020000Z-demo{i}", T0 + timedelta(days=i), "1.0", "pass", f"{c.id}", "latency", "pass",
             "p95_latency_ms", 1.0 + i) for i in range(3) for c in cells[:6]]
    frame = pd.DataFrame(rows, columns=["run_id", "started_at", "model_version", "verdict", "cell", "validator",
                                        "status", "metric", "value"])
    registry = {"versions": {"2.0": {"registered_at": "2026-11-02", "verdict": "fail", "run_id": "r2",
                                     "package": "/home/user/.modelcompat/registry/packages/demo-mlp/2.0"}},
                "aliases": {"production": "2.0"}}
    return [plan_table(checks, "plan for m 1 × nightly"), cells_table(matrix.name, cells),
            validators_table(Registry.discover()), *baseline_tables("m", [promotion]),
            history_table("m", "p95_latency_ms", frame, set())[0], registry_table("/reg", [("demo-mlp", registry)])]


@pytest.mark.parametrize("width", [60, 80, 120])
def test_every_table_fits_the_console_without_cutting_a_word(width) -> None:
    cells = load_matrix(matrices_dir() / "nightly.yaml").cells
    for table in _all_tables():
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(table)
        out = console.file.getvalue()
        assert max(len(line) for line in out.splitlines()) <= width, out
        assert "…" not in out, out
    out = text(*_all_tables())  # ids and names stay whole (at 250 columns too)
    for name in Registry.discover().names:
        assert name in out
    assert all(c.id in out for c in cells) and "20261101T020000Z-demo0" in out
