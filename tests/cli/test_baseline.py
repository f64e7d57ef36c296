"""`modelcompat baseline promote|show` on a copy of a store holding a real run and its history."""
from __future__ import annotations

import shutil
from pathlib import Path

from modelcompat.store import Store


def test_baseline_commands(history_store, tmp_path: Path, invoke) -> None:
    store, run_ids = history_store
    copy = tmp_path / "store"
    shutil.copytree(store.uri, copy)
    model = store.run(run_ids[0]).model_name
    code, out, _ = invoke("baseline", "promote", run_ids[2], "--cells", "host-ort/*", "--store", str(copy))
    assert code == 0 and f"promoted run {run_ids[2]}" in out
    # the real run has failing checks (latency budgets): no run passes yet
    code, _, err = invoke("baseline", "promote", "--rule", "last-passing", "--model", model, "--store", str(copy))
    assert code == 2 and "has verdict pass" in err
    passing = [r.model_copy(update={"run_id": "later-pass"}) for r in Store(copy).load_reports(run_ids[4])
               if r.status.value != "fail"]
    record = Store(copy).run(run_ids[4]).model_copy(update={"run_id": "later-pass", "verdict": "pass",
                                                            "n_reports": None})
    Store(copy).append_run(record, passing)
    code, out, _ = invoke("baseline", "promote", "--rule", "last-passing", "--model", model, "--store", str(copy))
    assert code == 0 and "rule last-passing" in out and "later-pass" in out
    code, out, _ = invoke("baseline", "show", model, "--store", str(copy))
    assert code == 0 and "later-pass" in out and "promotions" in out and run_ids[2] in out
    assert invoke("baseline", "promote", "nope", "--store", str(copy))[0] == 2
    assert invoke("baseline", "promote", "--rule", "last-passing", "--store", str(copy))[0] == 2
    assert invoke("baseline", "show", "ghost", "--store", str(copy))[0] == 2
    assert invoke("report", "nope", "--store", str(copy))[0] == 2
    assert invoke("report", run_ids[0], "--format", "pdf", "--store", str(copy))[0] == 2


def test_promote_refuses_contradictory_arguments_with_one_message(invoke, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    code, _, err = invoke("baseline", "promote", "--store", store)
    assert code == 2 and "give either RUN_ID or --rule" in err and "fix:" in err
    code, _, err = invoke("baseline", "promote", "r1", "--alias", "production", "--store", store)
    assert code == 2 and "--alias goes with --rule" in err
    assert "Traceback" not in err
