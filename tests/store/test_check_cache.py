"""The check cache: one finished check per key, readable before (and without) its run committing."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.store import Store, StoreError
from modelcompat.store.check_cache import load_check, save_check
from modelcompat.store.publish import StoreFS
from support.store_records import make_report

KEY = "0123456789abcdef" * 2


def test_a_saved_check_reads_back_and_stays_out_of_runs(tmp_path: Path) -> None:
    files = StoreFS(tmp_path)
    report = make_report("killed-run", 4).model_copy(update={"cache_key": KEY})
    save_check(files, report)
    assert load_check(files, KEY) == report
    assert (tmp_path / f"checks/{KEY}.parquet").is_file()
    store = Store(tmp_path)
    assert store.check(KEY) == report and store.runs().empty and store.reports().empty
    newer = report.model_copy(update={"run_id": "later"})
    store.save_check(newer)  # last writer of a key wins
    assert store.check(KEY) == newer


def test_misses_are_none_and_bad_keys_refused(tmp_path: Path) -> None:
    files = StoreFS(tmp_path)
    assert load_check(files, KEY) is None
    assert load_check(files, "../../etc/passwd") is None
    (tmp_path / "checks").mkdir()
    (tmp_path / f"checks/{KEY}.parquet").write_bytes(b"not parquet")
    assert load_check(files, KEY) is None  # unreadable: a miss, not an error
    with pytest.raises(StoreError, match="no usable cache_key"):
        save_check(files, make_report("r1", 0).model_copy(update={"cache_key": "key-0"}))
