"""`modelcompat store compact` on a real store."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from modelcompat.store import Store
from support.store_records import T0, make_report, make_run


def test_compact_merges_the_runs_and_keeps_every_report(invoke, tmp_path: Path) -> None:
    root = tmp_path / "store"
    code, out, _ = invoke("store", "compact", "--store", str(root))
    assert code == 0 and "nothing to compact" in out
    store = Store(root)
    for k in range(3):
        store.append_run(make_run(f"r{k}", T0 + timedelta(minutes=k)), [make_report(f"r{k}", i) for i in range(4)])
    code, out, _ = invoke("store", "compact", "--store", str(root))
    assert code == 0
    assert out.startswith("compacted 3 runs (12 report rows) into ")
    assert {len(Store(root).load_reports(f"r{k}")) for k in range(3)} == {4}
