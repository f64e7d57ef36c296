"""Where localisations are kept: one immutable JSON document per `modelcompat localise`, under
`localisations/<run_id>/<cell>--<time>.json` in the store; the newest per cell is the run's."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from modelcompat.store import Store, StoreError

FOLDER = "localisations"


def publish(store: Store, run_id: str, doc: dict[str, Any]) -> str:
    """Keep `doc` (a localisation of `run_id`) in the store; its location."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    name = doc["cell"].replace("/", "__")
    return store.publish_file(f"{FOLDER}/{run_id}/{name}--{stamp}.json", json.dumps(doc, indent=2).encode())


def stored(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The newest localisation of each cell of `run_id` (with `stored_at`), in cell order; none if none kept."""
    try:
        files = store.list_files(f"{FOLDER}/{run_id}", ".json")
    except (StoreError, FileNotFoundError, OSError):
        return []
    newest: dict[str, dict[str, Any]] = {}
    for path in files:  # sorted: the time stamp orders a cell's documents
        try:
            doc = json.loads(store.read_file(path))
        except (OSError, ValueError):
            continue  # a damaged document loses its localisation, never the report
        doc["stored_at"] = store.location(path)
        newest[doc["cell"]] = doc
    return [newest[c] for c in sorted(newest)]
