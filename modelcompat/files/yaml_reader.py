"""YAML reading with errors that name the file, line and field (never a traceback).

Every YAML file the product reads goes through `load_yaml_mapping`, which refuses alias bombs
("billion laughs") by their structure while composing, before anything walks the expanded document.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelcompat.errors import InputError

# Far above what a hand-written matrix, manifest or prefect.yaml uses (a handful of `*name`s), far
# below what makes walking the expanded document slow (a 200-byte bomb expands to ~10^9 nodes).
MAX_ALIASES = 100
MAX_ALIASED_NODES = 10_000


class AliasLimitError(yaml.YAMLError):
    """An alias that makes the document recursive or too large once expanded; `line` is the alias's."""

    def __init__(self, message: str, line: int, fix: str) -> None:
        super().__init__(message)
        self.message, self.line, self.fix = message, line, fix


class BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that counts, while composing, every alias and the nodes each one stands for.

    An anchored node's expanded size is known once it is composed (aliases inside it counted at their
    target's size), so the cost of expanding the whole document is bounded alias by alias, in linear
    time, however many times the aliases multiply.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0  # nodes of the expanded document so far
        self._aliases = 0
        self._aliased = 0  # of which reached through aliases
        self._size: dict[int, int] = {}  # id(node) -> its expanded node count, once composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if not self.check_event(yaml.AliasEvent):
            start = self._nodes
            self._nodes += 1
            node = super().compose_node(parent, index)
            self._size[id(node)] = self._nodes - start
            return node
        event = self.peek_event()
        target = self.anchors.get(event.anchor)
        if target is not None:  # an undefined alias is the composer's own error
            line = event.start_mark.line + 1
            size = self._size.get(id(target))
            if size is None:  # its anchor is still being composed: the alias sits inside it
                raise AliasLimitError(f"the YAML is recursive: alias *{event.anchor} refers to its own anchor",
                                      line, "remove the self-referencing alias")
            self._aliases += 1
            self._aliased += size
            self._nodes += size
            fix = (f"expand the anchors, or use fewer than {MAX_ALIASES} aliases "
                   f"(standing for at most {MAX_ALIASED_NODES} nodes in all)")
            if self._aliases > MAX_ALIASES:
                raise AliasLimitError(f"more than {MAX_ALIASES} YAML aliases, *{event.anchor} the first one over",
                                      line, fix)
            if self._aliased > MAX_ALIASED_NODES:
                raise AliasLimitError(f"YAML aliases expand this file past {MAX_ALIASED_NODES} nodes at alias "
                                      f"*{event.anchor} (an alias bomb, 'billion laughs')", line, fix)
        return super().compose_node(parent, index)


def compose_bounded(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree and its Python data, composed once; raises AliasLimitError on an alias bomb."""
    loader = BoundedSafeLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def load_yaml_mapping(path: Path, error: type[InputError]) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; keep line numbers for later messages.

    The returned dict carries a private `__lines__` entry mapping dotted field paths to 1-based lines.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror}", file=path, fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", file=path, line=1, fix="save the file as UTF-8") from None
    try:
        node, data = compose_bounded(text)
    except AliasLimitError as exc:
        raise error(exc.message, file=path, line=exc.line, fix=exc.fix) from None
    except RecursionError:
        raise error("the YAML is nested too deeply", file=path, line=1, fix="flatten the structure") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"invalid YAML: {problem}", file=path, line=line,
                    fix="fix the YAML syntax at that line") from None
    if not isinstance(data, dict):
        raise error("must be a YAML mapping (key: value) at the top level", file=path, line=1,
                    fix="start the file with the documented top-level keys")
    try:
        data["__lines__"] = _line_index(node)
    except RecursionError:
        raise error("the YAML is nested too deeply", file=path, line=1, fix="flatten the structure") from None
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
        fix = ctx.get("fix", fix)  # a validator that knows the fix says it (e.g. the SPDX licence check)
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
    return error(message, file=path, field=field or dotted, line=line, fix=fix)
