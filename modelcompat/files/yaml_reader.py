"""YAML reading with errors that name the file, line and field (never a traceback)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelcompat.errors import InputError


def load_yaml_mapping(path: Path, error: type[InputError]) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; keep line numbers for later messages.

    The returned dict carries a private `__lines__` entry mapping dotted field paths to 1-based lines.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror}", file=path, fix="check the path") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"invalid YAML: {problem}", file=path, line=line,
                    fix="fix the YAML syntax at that line") from None
    if not isinstance(data, dict):
        raise error("must be a YAML mapping (key: value) at the top level", file=path, line=1,
                    fix="start the file with the documented top-level keys")
    data["__lines__"] = _line_index(node)
    return data


def _line_index(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Map dotted paths (`backends.2.provider`) to the line their key or item starts on."""
    index: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            index[path] = key_node.start_mark.line + 1
            index.update(_line_index(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}.{i}" if prefix else str(i)
            index[path] = item.start_mark.line + 1
            index.update(_line_index(item, path))
    return index


def strip_lines(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """Split the private line index from the parsed data."""
    data = dict(data)
    return data, data.pop("__lines__", {})


def pydantic_error_to_input_error(exc: ValidationError, path: Path, error: type[InputError],
                                  lines: dict[str, int] | None = None) -> InputError:
    """The first validation error as one InputError naming file, line, field and fix."""
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    dotted = ".".join(loc)
    field = "".join(f"[{p}]" if p.isdigit() else (f".{p}" if i else p) for i, p in enumerate(loc)) or None
    line = None
    if lines:
        probe = list(loc)
        while probe and line is None:
            line = lines.get(".".join(probe))
            probe.pop()
    kind = first["type"]
    if kind == "extra_forbidden":
        message, fix = "unknown key", "remove it or check its spelling against the documented keys"
    elif kind == "missing":
        message, fix = "required field is missing", "add it"
    else:
        message = first["msg"]
        fix = "give a value of the documented type"
        ctx = first.get("ctx") or {}
        if "expected" in ctx:
            fix = f"use one of {ctx['expected']}"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
    return error(message, file=path, field=field or dotted, line=line, fix=fix)
