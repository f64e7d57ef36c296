"""Validate a SARIF document against the vendored SARIF 2.1.0 schema (tests/support/schemas/README.md)."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).parent / "schemas" / "sarif-2.1.0-rtm.5.json"


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft4Validator

    schema = json.loads(SCHEMA.read_text())
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def validated_sarif(text: str) -> dict[str, Any]:
    """The parsed document; fails the test with every schema error (path and message) if it does not validate."""
    doc = json.loads(text)
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10])
    return doc
