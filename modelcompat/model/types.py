"""The contract's type grammar: tensors, sequences, maps and optionals, parsed, printed and matched to values.

    type     := tensor | seq | map | optional
    tensor   := "tensor(" DTYPE ")" [ "[" dim ("," dim)* "]" ] | DTYPE     (bare DTYPE: any shape)
    seq      := "seq(" type ")"          map := "map(" DTYPE "," type ")"     optional := "optional(" type ")"
    dim      := INT | NAME | "?"         DTYPE := a numpy dtype name (`float32`, `int64`, `string`, ...)

A tensor without `[...]` leaves its shape unconstrained (ZipMap's map values are such scalars).
See docs/contract.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Dim = int | str  # an int is a fixed size, a str a symbolic dimension (`batch`) or `?`


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...] | None = None  # None: shape unconstrained

    def __str__(self) -> str:
        if self.shape is None:
            return f"tensor({self.dtype})"
        return f"tensor({self.dtype})[{','.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class SeqType:
    elem: ValueType

    def __str__(self) -> str:
        return f"seq({self.elem})"


@dataclass(frozen=True)
class MapType:
    key: str
    value: ValueType

    def __str__(self) -> str:
        return f"map({self.key},{_inner(self.value)})"


@dataclass(frozen=True)
class OptionalType:
    elem: ValueType

    def __str__(self) -> str:
        return f"optional({self.elem})"


ValueType = TensorType | SeqType | MapType | OptionalType
MAP_KEY_DTYPES = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "string")
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_.:-]*|-?\d+|\?)|(\S))")


def _inner(t: ValueType) -> str:
    """A map's shapeless tensor value prints as its bare dtype: `seq(map(int64,float32))`."""
    return t.dtype if isinstance(t, TensorType) and t.shape is None else str(t)


class TypeSyntaxError(ValueError):
    """A type expression that does not follow the grammar (the message says where)."""


def parse_type(text: str) -> ValueType:
    """Parse a type expression (see the module docstring).

    Raises:
        TypeSyntaxError: the text does not follow the grammar; the message names the position.
    """
    tokens = [(m.group(1) or m.group(2), m.start(1) if m.group(1) else m.start(2))
              for m in _TOKEN.finditer(text) if (m.group(1) or m.group(2))]
    pos = 0

    def fail(what: str) -> TypeSyntaxError:
        at = tokens[pos][1] if pos < len(tokens) else len(text)
        return TypeSyntaxError(f"{what} at character {at} of {text!r}")

    def take(expected: str | None = None, what: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise fail(f"expected {what or repr(expected) if (what or expected) else 'more'}, got the end")
        tok = tokens[pos][0]
        if expected is not None and tok != expected:
            raise fail(f"expected {expected!r}, got {tok!r}")
        pos += 1
        return tok

    def peek() -> str | None:
        return tokens[pos][0] if pos < len(tokens) else None

    def dtype() -> str:
        tok = take(what="a dtype")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok) or tok in ("tensor", "seq", "map", "optional"):
            raise TypeSyntaxError(f"{tok!r} is not a dtype in {text!r}")
        return tok

    def value() -> ValueType:
        head = peek()
        if head in ("seq", "optional"):
            take()
            take("(")
            elem = value()
            take(")")
            return SeqType(elem) if head == "seq" else OptionalType(elem)
        if head == "map":
            take()
            take("(")
            key = dtype()
            if key not in MAP_KEY_DTYPES:
                raise TypeSyntaxError(f"map key type {key!r} is not one of {', '.join(MAP_KEY_DTYPES)} in {text!r}")
            take(",")
            val = value()
            take(")")
            return MapType(key, val)
        if head == "tensor":
            take()
            take("(")
            dt = dtype()
            take(")")
            if peek() != "[":
                return TensorType(dt)
            take("[")
            dims: list[Dim] = []
            if peek() != "]":
                while True:
                    tok = take(what="a dim")
                    if tok in ",[]()":
                        raise fail(f"expected a dim, got {tok!r}")
                    dims.append(int(tok) if re.fullmatch(r"-?\d+", tok) else tok)
                    if peek() != ",":
                        break
                    take(",")
            take("]")
            return TensorType(dt, tuple(dims))
        return TensorType(dtype())

    result = value()
    if pos != len(tokens):
        raise fail(f"unexpected {tokens[pos][0]!r}")
    return result


def format_type(t: ValueType) -> str:
    return str(t)


# --- values ---------------------------------------------------------------------------------------

def dtype_name(dtype: Any) -> str:
    """numpy dtype -> contract dtype name: unicode/bytes/object strings are all `string`."""
    import numpy as np

    dtype = np.dtype(dtype)
    return "string" if dtype.kind in "USO" else dtype.name


def type_of(value: Any) -> ValueType:
    """The type a decoded value has: arrays are tensors with their shape, lists seq, dicts map, None optional."""
    import numpy as np

    if value is None:
        return OptionalType(TensorType("?"))
    if isinstance(value, dict):
        keys = list(value)
        key = dtype_name(np.asarray(keys).dtype) if keys else "?"
        vals = list(value.values())
        return MapType(key, _shapeless(type_of(vals[0])) if vals else TensorType("?"))
    if isinstance(value, (list, tuple)):
        return SeqType(_shapeless(type_of(value[0])) if value else TensorType("?"))
    arr = np.asarray(value)
    return TensorType(dtype_name(arr.dtype), tuple(int(s) for s in arr.shape))


def _shapeless(t: ValueType) -> ValueType:
    return TensorType(t.dtype) if isinstance(t, TensorType) else t


def mismatch(value: Any, want: ValueType, where: str, bindings: dict[str, int] | None = None) -> str | None:
    """Why `value` does not conform to `want` (naming the path, e.g. `output_probability[3] key 2`), else None.

    Symbolic dims bind to one size across every call sharing `bindings`.
    """
    import numpy as np

    bindings = {} if bindings is None else bindings
    if isinstance(want, OptionalType):
        return None if value is None else mismatch(value, want.elem, where, bindings)
    if value is None:
        return f"{where} is empty (None), the contract says {want}"
    if isinstance(want, SeqType):
        if not isinstance(value, (list, tuple)):
            return f"{where} is {type_of(value)}, the contract says {want}"
        for i, item in enumerate(value):
            why = mismatch(item, want.elem, f"{where}[{i}]", bindings)
            if why:
                return why
        return None
    if isinstance(want, MapType):
        if not isinstance(value, dict):
            return f"{where} is {type_of(value)}, the contract says {want}"
        for k, v in value.items():
            key_type = dtype_name(np.asarray(k).dtype)
            if not _key_ok(key_type, want.key):
                return f"{where} has a {key_type} key {k!r}, the contract says keys are {want.key}"
            why = mismatch(v, want.value, f"{where}[{k!r}]", bindings)
            if why:
                return why
        return None
    if isinstance(value, (dict, list, tuple)):
        return f"{where} is {type_of(value)}, the contract says {want}"
    arr = np.asarray(value)
    have = dtype_name(arr.dtype)
    if have != want.dtype and not (np.ndim(value) == 0 and _scalar_ok(have, want.dtype) and not isinstance(
            value, np.ndarray)):
        return f"{where} is {have}, the contract says {want.dtype}"
    if want.shape is None:
        return None
    if arr.ndim != len(want.shape):
        return f"{where} has shape {list(arr.shape)} (rank {arr.ndim}), the contract says rank {len(want.shape)} " \
               f"{list(want.shape)}"
    for axis, (dim, size) in enumerate(zip(want.shape, arr.shape)):
        if isinstance(dim, int) and dim != size:
            return f"{where} axis {axis} is {size}, the contract fixes it to {dim}"
        if isinstance(dim, str) and dim != "?" and bindings.setdefault(dim, int(size)) != size:
            return f"{where} axis {axis} ({dim}) is {size}, but {dim} is {bindings[dim]} elsewhere"
    return None


def _key_ok(have: str, want: str) -> bool:
    # A Python int key decodes as int64 whatever the declared integer width; strings must be strings.
    return have == want or (have.startswith(("int", "uint")) and want.startswith(("int", "uint")))


def _scalar_ok(have: str, want: str) -> bool:
    """Python scalars (float -> float64, int -> int64) stand for any float / integer dtype."""
    kinds = {"float": ("float16", "float32", "float64", "bfloat16"), "int": MAP_KEY_DTYPES[:-1]}
    return any(have in group and want in group for group in kinds.values())


def is_tensor(t: ValueType) -> bool:
    return isinstance(t, TensorType)
