"""The compatibility matrix: its YAML model (`MatrixSpec`) and its expansion into cells.

Expansion order: product -> implicit kind pairing -> constraints -> exclude -> include (see matrices/README.md).
"""
from __future__ import annotations

import difflib
import fnmatch
import json
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from modelcompat.errors import MatrixError
from modelcompat.files.yaml_reader import (
    load_yaml_mapping,
    pydantic_error_to_input_error,
    strip_lines,
)
from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec
from modelcompat.matrix.families import KINDS

Axis = Literal["runtime", "hardware", "backend"]
AXES: tuple[Axis, ...] = ("runtime", "hardware", "backend")
# The YAML key holding each axis's declarations.
AXIS_KEYS: dict[Axis, str] = {"runtime": "runtimes", "hardware": "hardware", "backend": "backends"}
DEFAULT_MAX_CELLS = 2000
# Above this many candidate cells we refuse without enumerating them (it would take seconds or minutes).
_ENUMERATION_LIMIT = 1_000_000
# How many cell ids an error message lists before summarising.
_LIST_LIMIT = 40


def _as_list(value: Any) -> Any:
    # `backend: ort-cpu` is shorthand for `backend: [ort-cpu]`.
    return [value] if isinstance(value, str) else value


IdList = Annotated[
    list[str],
    BeforeValidator(_as_list),
    Field(min_length=1),
    # The schema shows what the YAML may hold (an id or a list of ids), not the normalised list.
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Strict):
    """A partial cell selector: a cell matches when, on every axis named, its id is one of those listed."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    runtime: IdList | None = Field(None, description="Runtime id(s).")
    hardware: IdList | None = Field(None, description="Hardware id(s).")
    backend: IdList | None = Field(None, description="Backend id(s).")

    @model_validator(mode="after")
    def _names_an_axis(self) -> Selector:
        # An empty selector would match every cell: almost surely a mistake, never a useful rule.
        if not self.axes():
            raise PydanticCustomError(
                "axis_kind", "a selector must name at least one axis",
                {"fix": "give at least one of `runtime`, `hardware`, `backend` with id(s)"},
            )
        return self

    def axes(self) -> dict[Axis, tuple[str, ...]]:
        """The axes this selector constrains, with their ids."""
        return {axis: tuple(ids) for axis in AXES if (ids := getattr(self, axis)) is not None}

    def matches(self, ids: dict[Axis, str]) -> bool:
        """Whether the cell with these per-axis ids matches."""
        return all(ids[axis] in allowed for axis, allowed in self.axes().items())

    def describe(self) -> str:
        """`backend ort-cuda` / `runtime host-ort|ort-1.16 and hardware cpu`."""
        return " and ".join(f"{axis} {'|'.join(ids)}" for axis, ids in self.axes().items())


class Constraint(_Strict):
    """A cell that matches `when` must also match `require`, or it is not generated."""

    when: Selector = Field(description="Which cells the rule applies to.")
    require: Selector = Field(description="What those cells must also match.")

    def allows(self, ids: dict[Axis, str]) -> bool:
        return not self.when.matches(ids) or self.require.matches(ids)


class IncludeCell(_Strict):
    """One full cell added after `exclude` (it must respect kind pairing and constraints)."""

    runtime: str = Field(description="Runtime id.")
    hardware: str = Field(description="Hardware id.")
    backend: str = Field(description="Backend id.")


class MatrixSpec(_Strict):
    """A compatibility matrix file: three axes, the rules that prune their product, and a size cap."""

    model_config = ConfigDict(title="modelcompat matrix")

    name: str = Field(min_length=1, description="Matrix name, recorded with every run.")
    description: str | None = Field(None, description="Free text: what this matrix is for.")
    runtimes: list[RuntimeSpec] = Field(min_length=1, description="Runtime axis (declared order is cell order).")
    hardware: list[HardwareSpec] = Field(min_length=1, description="Hardware axis.")
    backends: list[BackendSpec] = Field(min_length=1, description="Backend axis.")
    constraints: list[Constraint] = Field(
        default_factory=list, description="Rules `{when, require}`: a cell matching `when` must match `require`."
    )
    exclude: list[Selector] = Field(default_factory=list, description="Selectors removing the cells they match.")
    include: list[IncludeCell] = Field(
        default_factory=list, description="Full cells added after `exclude` (must not contradict the rules)."
    )
    max_cells: int = Field(
        DEFAULT_MAX_CELLS, ge=1, description="Refuse an expansion larger than this (guards against typos)."
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Validator parameters for every cell of this matrix, by validator name "
        "(e.g. `latency: {time_budget_s: 20}`); a package manifest's `params`, then a run's own, override them."
    )


@dataclass(frozen=True)
class Matrix:
    """A loaded, validated and expanded matrix."""

    name: str
    path: Path
    spec: MatrixSpec
    cells: list[Cell] = field(default_factory=list)

    @property
    def cell_ids(self) -> list[str]:
        return [c.id for c in self.cells]

    def select(self, pattern: str | None) -> list[Cell]:
        """Cells whose id (`runtime/hardware/backend`) matches any comma-separated fnmatch glob.

        None or an empty pattern selects every cell. `*` also matches `/`, so `*cuda*` works.
        Raises MatrixError (field `--cells`) when one of the patterns matches no cell.
        """
        if pattern is None:
            return list(self.cells)
        patterns = [p.strip() for p in pattern.split(",") if p.strip()]
        if not patterns:
            return list(self.cells)
        for pat in patterns:
            if not any(fnmatch.fnmatchcase(c.id, pat) for c in self.cells):
                raise MatrixError(
                    f"pattern '{pat}' matches no cell of matrix '{self.name}' "
                    f"(available: {_listing(self.cell_ids)})",
                    field="--cells",
                    fix="give comma-separated globs over cell ids runtime/hardware/backend, "
                        "e.g. --cells 'host-ort/*' or --cells '*/cpu/*,*torch*'",
                )
        return [c for c in self.cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def matrix_json_schema() -> dict[str, Any]:
    """The JSON schema of a matrix file (committed as matrices/schema.json for editors)."""
    schema = MatrixSpec.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def load_matrix(path: str | Path) -> Matrix:
    """Read, validate and expand a matrix YAML file. Every problem raises MatrixError naming file and line."""
    path = Path(path)
    # The reader refuses non-UTF-8 text, recursive aliases and alias bombs, naming the line.
    data, lines = strip_lines(load_yaml_mapping(path, MatrixError))
    try:
        spec = MatrixSpec.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc, path, lines) from None
    except RecursionError:
        raise MatrixError("the YAML is too deeply nested", file=path, line=1, fix="flatten the structure") from None
    return Matrix(name=spec.name, path=path, spec=spec, cells=_expand(spec, path, lines))


# --- expansion ------------------------------------------------------------------------------------


def _expand(spec: MatrixSpec, path: Path, lines: dict[str, int]) -> list[Cell]:
    axes: dict[Axis, Sequence[Any]] = {"runtime": spec.runtimes, "hardware": spec.hardware,
                                       "backend": spec.backends}
    for axis, items in axes.items():
        _check_unique(axis, items, path, lines)
    valid = {axis: [item.id for item in items] for axis, items in axes.items()}
    _check_rule_ids(spec, valid, path, lines)
    by_id = {axis: {item.id: item for item in items} for axis, items in axes.items()}

    # Counted before enumerating, so an accidental 1000×1000×1000 matrix is refused at once.
    per_kind = {kind: sum(1 for b in spec.backends if b.runtime == kind) for kind in KINDS}
    candidates = sum(len(spec.hardware) * per_kind.get(r.kind, 0) for r in spec.runtimes)
    if candidates == 0:
        kinds = ", ".join(sorted({r.kind for r in spec.runtimes}))
        raise MatrixError(
            f"no backend runs on any declared runtime (runtime kinds: {kinds}; "
            f"backend runtimes: {', '.join(sorted({b.runtime for b in spec.backends}))})",
            file=path, field="backends", line=lines.get("backends"),
            fix="add a backend whose `runtime` is one of the runtime kinds, or a runtime of a backend's kind",
        )
    if candidates > max(_ENUMERATION_LIMIT, spec.max_cells):
        raise _too_many(candidates, spec, path, lines, before_rules=True)

    # Cells as id triples until the end: rules only look at ids, and Cell objects are built once.
    paired = [
        (r.id, h.id, b.id)
        for r in spec.runtimes for h in spec.hardware for b in spec.backends
        if b.runtime == r.kind  # implicit rule: a backend only runs on runtimes of its kind
    ]
    constrained = [t for t in paired if all(c.allows(_ids(t)) for c in spec.constraints)]
    if not constrained:
        raise MatrixError(
            f"the rules exclude every cell: the constraints leave none of the {len(paired)} candidate cells",
            file=path, field="constraints", line=lines.get("constraints"),
            fix="loosen a constraint (its `require` must be satisfiable by some declared runtime/hardware/backend)",
        )
    kept = [t for t in constrained if not any(sel.matches(_ids(t)) for sel in spec.exclude)]
    present = set(kept)
    for i, inc in enumerate(spec.include):
        triple = (inc.runtime, inc.hardware, inc.backend)
        _check_include(i, inc, spec, by_id, path, lines)
        if triple not in present:  # including a cell that is already there is a no-op
            kept.append(triple)
            present.add(triple)
    if not kept:
        raise MatrixError(
            f"the rules exclude every cell: `exclude` removes all {len(constrained)} cells the constraints leave",
            file=path, field="exclude", line=lines.get("exclude"),
            fix="narrow the exclude selectors, or add the cells you want under `include`",
        )
    if len(kept) > spec.max_cells:
        raise _too_many(len(kept), spec, path, lines, before_rules=False)
    return [
        Cell.model_construct(  # parts are already validated; model_construct skips re-validating them
            runtime=by_id["runtime"][r], hardware=by_id["hardware"][h], backend=by_id["backend"][b]
        )
        for r, h, b in kept
    ]


def _ids(triple: tuple[str, str, str]) -> dict[Axis, str]:
    return {"runtime": triple[0], "hardware": triple[1], "backend": triple[2]}


def _check_unique(axis: Axis, items: Sequence[Any], path: Path, lines: dict[str, int]) -> None:
    key = AXIS_KEYS[axis]
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id in first:
            raise MatrixError(
                f"duplicate {axis} id '{item.id}' (first declared at {key}[{first[item.id]}])",
                file=path, field=f"{key}[{i}].id", line=_line(lines, key, i, "id"),
                fix=f"give each {axis} a unique id, or remove the repeated entry",
            )
        first[item.id] = i


def _check_rule_ids(spec: MatrixSpec, valid: dict[Axis, list[str]], path: Path, lines: dict[str, int]) -> None:
    """Every id a rule names must be declared on its axis (a typo would otherwise silently match nothing)."""
    refs: list[tuple[tuple[str | int, ...], Axis, str]] = []

    def selector_refs(prefix: tuple[str | int, ...], sel: Selector) -> None:
        for axis, ids in sel.axes().items():
            shorthand = _raw_is_scalar(lines, (*prefix, axis))
            for j, ident in enumerate(ids):
                refs.append(((*prefix, axis) if shorthand else (*prefix, axis, j), axis, ident))

    for i, con in enumerate(spec.constraints):
        selector_refs(("constraints", i, "when"), con.when)
        selector_refs(("constraints", i, "require"), con.require)
    for i, sel in enumerate(spec.exclude):
        selector_refs(("exclude", i), sel)
    for i, inc in enumerate(spec.include):
        for axis in AXES:
            refs.append((("include", i, axis), axis, getattr(inc, axis)))

    for loc, axis, ident in refs:
        if ident in valid[axis]:
            continue
        close = difflib.get_close_matches(ident, valid[axis], n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise MatrixError(
            f"unknown {axis} '{ident}' (valid: {', '.join(valid[axis])})",
            file=path, field=_dotted(loc), line=_line(lines, *loc),
            fix=f"{hint}use a {axis} id declared under `{AXIS_KEYS[axis]}`, or declare '{ident}' there",
        )


def _raw_is_scalar(lines: dict[str, int], loc: tuple[str | int, ...]) -> bool:
    # The line index has `<loc>.0` entries only when the YAML gave a list (not the `backend: id` shorthand).
    return f"{'.'.join(map(str, loc))}.0" not in lines


def _check_include(i: int, inc: IncludeCell, spec: MatrixSpec, by_id: dict[Axis, dict[str, Any]],
                   path: Path, lines: dict[str, int]) -> None:
    """An include that the implicit pairing or a constraint forbids is a contradiction, not a silent drop."""
    runtime, backend = by_id["runtime"][inc.runtime], by_id["backend"][inc.backend]
    cell_id = f"{inc.runtime}/{inc.hardware}/{inc.backend}"
    if backend.runtime != runtime.kind:
        fitting = [r.id for r in spec.runtimes if r.kind == backend.runtime]
        raise MatrixError(
            f"included cell {cell_id} contradicts the kind pairing: backend '{backend.id}' runs on "
            f"{backend.runtime}, runtime '{runtime.id}' is {runtime.kind}",
            file=path, field=f"include[{i}]", line=_line(lines, "include", i),
            fix=f"pair backend '{backend.id}' with a runtime of kind {backend.runtime} "
                f"({', '.join(fitting) or 'none declared'}), or remove this include entry",
        )
    ids = _ids((inc.runtime, inc.hardware, inc.backend))
    for j, con in enumerate(spec.constraints):
        if not con.allows(ids):
            raise MatrixError(
                f"included cell {cell_id} contradicts constraints[{j}]: "
                f"when {con.when.describe()}, require {con.require.describe()}",
                file=path, field=f"include[{i}]", line=_line(lines, "include", i),
                fix=f"remove this include entry, or change constraints[{j}]",
            )


def _too_many(count: int, spec: MatrixSpec, path: Path, lines: dict[str, int], *, before_rules: bool) -> MatrixError:
    what = (f"{count} candidate cells before constraints and exclude" if before_rules
            else f"{count} cells")
    return MatrixError(
        f"the matrix expands to {what}, more than max_cells ({spec.max_cells})",
        file=path, field="max_cells", line=lines.get("max_cells") or lines.get("runtimes"),
        fix="narrow it: drop axis entries, add `constraints` or `exclude` selectors, split it into several "
            "matrix files, or run a subset with --cells; raise `max_cells` only if you mean it",
    )


# --- error conversion -----------------------------------------------------------------------------


def _from_validation_error(exc: ValidationError, path: Path, lines: dict[str, int]) -> MatrixError:
    """One pydantic error as a MatrixError, with more specific messages and fixes than the generic ones.

    An unknown key is reported first when there is one: a misspelt key (`provder`) also causes the
    "missing" error for the key it meant, and the typo is the thing to fix.
    """
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    if first is errors[0]:
        # Reuse the shared conversion (field spelling, line lookup, generic messages) for the ordinary case.
        base = pydantic_error_to_input_error(exc, path, MatrixError, lines)
        message, fix = base.message, base.fix
    else:
        message, fix = first["msg"], None
    loc = tuple(first["loc"])
    kind = first["type"]
    ctx = first.get("ctx") or {}
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''} in this file)" if more else ""
    if kind == "extra_forbidden" and loc:
        allowed = _allowed_keys(loc[:-1])
        message = f"unknown key '{loc[-1]}'{suffix}"
        fix = "remove it or check its spelling against the documented keys"
        if allowed:
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            fix = f"{hint}valid keys here: {', '.join(allowed)}"
    elif "fix" in ctx:  # our own validators (cells.py, Selector) carry a specific fix
        message, fix = f"{first['msg']}{suffix}", str(ctx["fix"])
    elif len(loc) == 1 and loc[0] in AXIS_KEYS.values() and (
            kind == "too_short" or first.get("input") is None):
        # `runtimes: []` or a bare `runtimes:` (null): the same mistake, one message.
        message = f"`{loc[0]}` is empty: a matrix needs at least one entry on every axis{suffix}"
        fix = f"declare at least one entry under `{loc[0]}` (see matrices/README.md)"
    elif kind == "string_pattern_mismatch" and loc and loc[-1] == "id":
        fix = "use letters, digits and . _ + - only (ids form the cell id runtime/hardware/backend)"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    return MatrixError(message, file=path, field=_dotted(loc) or None, line=_line(lines, *loc) or 1,
                       fix=fix or "give a value of the documented type")


def _allowed_keys(loc: Iterable[Any]) -> list[str]:
    """The keys the model at `loc` (a pydantic error location inside MatrixSpec) accepts; [] if unknown."""
    current: Any = MatrixSpec
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return []
            current = info.annotation
        elif typing.get_origin(current) in (list, tuple):
            current = typing.get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    # Strip Annotated[...] and `X | None` to the type that holds the keys.
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _dotted(loc: Sequence[Any]) -> str:
    """('constraints', 0, 'when', 'backend', 1) -> constraints[0].when.backend[1] (as yamlio spells fields)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else (
            f".{part}" if out else str(part))
    return out


def _line(lines: dict[str, int], *loc: Any) -> int | None:
    """The line of the nearest enclosing entry the index knows."""
    parts = [str(p) for p in loc]
    while parts:
        if (line := lines.get(".".join(parts))) is not None:
            return line
        parts.pop()
    return None


def _listing(ids: list[str]) -> str:
    if len(ids) <= _LIST_LIMIT:
        return ", ".join(ids)
    return ", ".join(ids[:_LIST_LIMIT]) + f", … and {len(ids) - _LIST_LIMIT} more"


if __name__ == "__main__":
    # Regenerate the committed schema: python -m modelcompat.matrix.spec > matrices/schema.json
    print(json.dumps(matrix_json_schema(), indent=2))
