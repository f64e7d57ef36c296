"""docs/reliability.md names tests by node id: every one must exist, so the table cannot drift."""
from __future__ import annotations

import re

from modelcompat.settings import REPO_ROOT

DOC = REPO_ROOT / "docs" / "reliability.md"


def test_every_test_named_in_the_reliability_doc_exists() -> None:
    ids = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", DOC.read_text()))
    assert len(ids) >= 40
    missing = []
    for path, name in sorted(ids):
        source = REPO_ROOT / path
        if not source.is_file() or not re.search(rf"^(async )?def {name}\(", source.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert missing == []
