"""Localisations kept in the store: immutable documents, the newest per cell is the run's."""
from __future__ import annotations

from modelcompat.execution.localise_records import publish, stored
from modelcompat.store import Store


def test_the_newest_per_cell_is_returned_and_a_damaged_one_skipped(tmp_path):
    store = Store(tmp_path / "store")
    assert stored(store, "r1") == []
    publish(store, "r1", {"cell": "a/cpu/x", "found": False})
    newest = publish(store, "r1", {"cell": "a/cpu/x", "found": True})
    publish(store, "r1", {"cell": "b/cpu/x", "found": False})
    store.publish_file("localisations/r1/zz--broken.json", b"{not json")
    docs = stored(store, "r1")
    assert [(d["cell"], d["found"]) for d in docs] == [("a/cpu/x", True), ("b/cpu/x", False)]
    assert docs[0]["stored_at"] == newest
    assert stored(store, "r2") == []
