"""The store's own errors: RunNotFoundError names the store, the run id and the fix."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modelcompat.errors import InputError
from modelcompat.store import RunNotFoundError, Store, StoreError
from support.store_records import T0, make_report, make_run


def test_unknown_run_names_store_id_and_recent_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for k in range(7):
        store.append_run(make_run(f"r{k}", T0 + timedelta(minutes=k)), [make_report(f"r{k}", 0)])
    with pytest.raises(RunNotFoundError) as info:
        store.require_run("nope")
    error = info.value
    assert isinstance(error, StoreError) and not isinstance(error, InputError)  # the store's own error
    assert (error.store, error.run_id, error.recent) == (str(tmp_path), "nope", ("r2", "r3", "r4", "r5", "r6"))
    text = str(error)
    assert "\n" not in text  # one line, for the CLI
    assert "'nope'" in text and str(tmp_path) in text and "pick one of the recent runs: r2, r3, r4, r5, r6" in text
    with pytest.raises(RunNotFoundError, match="'gone'"):
        store.load_reports("gone")


def test_empty_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match="the store is empty") as info:
        Store(tmp_path / "empty").require_run("r1")
    assert info.value.recent == ()
