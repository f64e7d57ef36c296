"""Store layout: the tables' paths, and which paths documents (baselines) may use."""
from __future__ import annotations

import pytest

from modelcompat.store import StoreError
from modelcompat.store.layout import check_file, document_path, is_hidden, run_file


def test_table_paths() -> None:
    assert run_file("r1") == "runs/r1.parquet"
    assert check_file("ab" * 8) == "checks/abababababababab.parquet"
    assert is_hidden(".tmp-1-x.parquet") and is_hidden("_SUCCESS") and not is_hidden("r1.parquet")


def test_document_paths_stay_inside_and_outside_the_tables() -> None:
    assert document_path("baselines/org%2Fdemo/2026.json") == "baselines/org%2Fdemo/2026.json"
    for bad, reason in (("/etc/passwd", "relative"), ("baselines/../runs/x", "'..'"), ("a//b", "empty"),
                        ("runs/r9.parquet", "tables own"), ("reports/x", "tables own"), ("checks/k", "tables own"),
                        ("baselines/.tmp-x.json", "hidden"), ("", "relative")):
        with pytest.raises(StoreError, match=reason):
            document_path(bad)
