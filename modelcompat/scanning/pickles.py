"""Walk a pickle's opcodes without executing them and list every global it would import, where.

A small symbolic unpickler: literals, tuples, lists, dicts and the memo are followed exactly (so a module or name
built through MEMOIZE/GET, DUP or a pop-and-fetch trick still resolves); anything a call would return is opaque.
What cannot be resolved is reported as such: it cannot be allowed. joblib's inline array bytes are skipped the way
its unpickler reads them (size from the wrapper's shape and dtype), and object arrays' nested pickles are scanned.
"""
from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass, field
from typing import Any

from modelcompat.scanning.allowlist import normalise

_CAP = 4096  # literals longer than this are kept as their length only: nothing needs their content


@dataclass(frozen=True)
class GlobalRef:
    """A global the pickle imports: `module.name` (None when it cannot be resolved) and where."""

    target: str | None
    module: str | None
    name: str | None
    opcode: str
    pos: int
    detail: str = ""


@dataclass
class PickleScan:
    """What one pickle stream would import, and whether it parsed to its STOP."""

    globals: list[GlobalRef] = field(default_factory=list)
    error: str | None = None
    end: int = 0
    nested: int = 0  # object-array pickles found inside (joblib)


class _Opaque:
    """A value the scan does not compute (a call's result, a persistent id, a long blob)."""


@dataclass(eq=False)
class _Global:
    target: str


@dataclass(eq=False)
class _Call:
    func: Any
    args: Any
    state: Any = None


_MARK = object()
_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
            "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}
_LITERALS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"}


class _Machine:
    def __init__(self, scan: PickleScan) -> None:
        self.scan = scan
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}

    def pop(self) -> Any:
        return self.stack.pop() if self.stack else _Opaque()

    def pop_mark(self) -> list[Any]:
        items: list[Any] = []
        while self.stack:
            item = self.stack.pop()
            if item is _MARK:
                return items[::-1]
            items.append(item)
        return items[::-1]

    def top(self) -> Any:
        return self.stack[-1] if self.stack else _Opaque()

    def add_global(self, module: Any, name: Any, opcode: str, pos: int) -> None:
        if isinstance(module, str) and isinstance(name, str):
            target = normalise(module, name)
            self.scan.globals.append(GlobalRef(target, module, name, opcode, pos))
            self.stack.append(_Global(target))
        else:
            kinds = f"{type(module).__name__}/{type(name).__name__}"
            self.scan.globals.append(GlobalRef(None, None, None, opcode, pos,
                                               f"module/name operands are not literal strings ({kinds})"))
            self.stack.append(_Opaque())

    def step(self, op: Any, arg: Any, pos: int) -> Any:  # noqa: C901 - one branch per opcode family
        """Apply one opcode; returns the object a BUILD just completed (for joblib), else None."""
        name, stack = op.name, self.stack
        if name in _STRINGS:
            value = arg
            if isinstance(value, (bytes, str)) and len(value) > _CAP:
                value = _Opaque()
            stack.append(value)
        elif name in _LITERALS:
            stack.append(arg)
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            self.add_global(module, attr, name, pos)
        elif name == "STACK_GLOBAL":
            attr = self.pop()
            module = self.pop()
            self.add_global(module, attr, name, pos)
        elif name == "INST":
            module, _, attr = str(arg).partition(" ")
            args = self.pop_mark()
            self.add_global(module, attr, name, pos)
            stack.append(_Call(self.pop(), tuple(args)))
        elif name == "OBJ":
            items = self.pop_mark()
            stack.append(_Call(items[0] if items else _Opaque(), tuple(items[1:])))
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.scan.globals.append(GlobalRef(None, None, None, name, pos, f"copyreg extension code {arg}"))
            stack.append(_Opaque())
        elif name == "REDUCE":
            args = self.pop()
            stack.append(_Call(self.pop(), args))
        elif name == "NEWOBJ":
            args = self.pop()
            stack.append(_Call(self.pop(), args))
        elif name == "NEWOBJ_EX":
            self.pop()
            args = self.pop()
            stack.append(_Call(self.pop(), args))
        elif name == "BUILD":
            state = self.pop()
            obj = self.top()
            if isinstance(obj, _Call):
                obj.state = state
                return obj
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop() for _ in range(n)][::-1]
            stack.append(tuple(items))
        elif name == "TUPLE":
            stack.append(tuple(self.pop_mark()))
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "LIST":
            stack.append(self.pop_mark())
        elif name == "APPEND":
            value = self.pop()
            if isinstance(self.top(), list):
                self.top().append(value)
        elif name == "APPENDS":
            values = self.pop_mark()
            if isinstance(self.top(), list):
                self.top().extend(values)
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "DICT":
            items = self.pop_mark()
            stack.append(self._dict(items))
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            if isinstance(self.top(), dict):
                self._set(self.top(), key, value)
        elif name == "SETITEMS":
            items = self.pop_mark()
            if isinstance(self.top(), dict):
                self.top().update(self._dict(items))
        elif name in ("EMPTY_SET",):
            stack.append(_Opaque())
        elif name in ("ADDITEMS",):
            self.pop_mark()
        elif name == "FROZENSET":
            self.pop_mark()
            stack.append(_Opaque())
        elif name == "MARK":
            stack.append(_MARK)
        elif name == "POP":
            self.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            stack.append(self.top())
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo.get(arg, _Opaque()))
        elif name in ("PERSID",):
            stack.append(_Opaque())
        elif name == "BINPERSID":
            self.pop()
            stack.append(_Opaque())
        elif name in ("PROTO", "FRAME", "STOP", "READONLY_BUFFER"):
            pass
        else:  # NEXT_BUFFER and anything newer: generic stack effect from pickletools' table
            before = list(op.stack_before)
            if pickletools.markobject in before:
                self.pop_mark()
                before = before[:before.index(pickletools.markobject)]
            for _ in before:
                self.pop()
            stack.extend(_Opaque() for _ in op.stack_after)
        return None

    @staticmethod
    def _set(d: dict[Any, Any], key: Any, value: Any) -> None:
        try:
            d[key] = value
        except TypeError:
            pass  # an unhashable key (a list): the real unpickler fails too; nothing to learn from it

    def _dict(self, items: list[Any]) -> dict[Any, Any]:
        d: dict[Any, Any] = {}
        for key, value in zip(items[::2], items[1::2]):
            self._set(d, key, value)
        return d


def _joblib_array(obj: _Call) -> tuple[int, bool, bool] | None:
    """(raw bytes that follow, is-object-array, padded) for a built joblib NumpyArrayWrapper, else None."""
    if not (isinstance(obj.func, _Global) and obj.func.target == "joblib.numpy_pickle.NumpyArrayWrapper"):
        return None
    state = obj.state if isinstance(obj.state, dict) else {}
    dtype, shape = state.get("dtype"), state.get("shape")
    if not (isinstance(dtype, _Call) and isinstance(dtype.args, tuple) and dtype.args
            and isinstance(dtype.args[0], str) and isinstance(shape, tuple)
            and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise ValueError("a joblib array wrapper whose shape or dtype is not literal")
    descr = dtype.args[0]
    dstate = dtype.state if isinstance(dtype.state, tuple) else ()
    flags = dstate[7] if len(dstate) > 7 and isinstance(dstate[7], int) else 0
    if descr.startswith("O") or flags & 1:
        return 0, True, False
    import numpy as np  # a dtype string is parsed, never evaluated

    itemsize = dstate[5] if len(dstate) > 5 and isinstance(dstate[5], int) and dstate[5] > 0 else np.dtype(descr).itemsize
    count = 1
    for d in shape:
        count *= d
    # joblib >= 0.12 writes one byte giving the alignment padding that follows it, then the padding.
    return count * itemsize, False, state.get("numpy_array_alignment_bytes") is not None


def scan_pickle(data: bytes, start: int = 0) -> PickleScan:
    """Every global the pickle starting at `start` imports (never executed), up to its STOP or a parse error.

    Handles protocols 0-5: GLOBAL / INST (module and name inline), STACK_GLOBAL (operands followed through the
    stack and memo), EXT1/2/4 (the copyreg registry: unresolvable, so reported). A crafted pickle that imports
    something and then breaks off still reports the import (an unpickler runs as it reads).
    """
    scan = PickleScan()
    machine = _Machine(scan)
    stream = io.BytesIO(data)
    stream.seek(start)
    try:
        while True:
            resumed = False
            for op, arg, pos in pickletools.genops(stream):
                built = machine.step(op, arg, pos)
                if built is None:
                    continue
                joblib = _joblib_array(built)
                if joblib is None:
                    continue
                size, is_object, padded = joblib
                machine.pop()
                machine.stack.append(_Opaque())
                if is_object:  # joblib pickles object arrays inline: a whole pickle, scanned as one
                    inner = scan_pickle(data, stream.tell())
                    scan.nested += 1
                    scan.globals.extend(inner.globals)
                    if inner.error:
                        raise ValueError(f"object array pickle at byte {stream.tell()}: {inner.error}")
                    stream.seek(inner.end)
                else:
                    if padded:
                        pad = stream.read(1)
                        size += pad[0] if pad else 0
                    if stream.tell() + size > len(data):
                        raise ValueError("a joblib array runs past the end of the file")
                    stream.seek(stream.tell() + size)
                resumed = True
                break  # restart the opcode walk at the new position
            if not resumed:
                break
        scan.end = stream.tell()
    except Exception as exc:  # genops raises ValueError and friends on truncated or crafted pickles
        scan.error = f"{type(exc).__name__}: {exc}"
        scan.end = stream.tell()
    return scan


def scan_pickle_sequence(data: bytes) -> list[PickleScan]:
    """Consecutive pickles (the legacy torch.save format writes several, then raw storage bytes)."""
    scans: list[PickleScan] = []
    pos = 0
    while pos < len(data):
        scan = scan_pickle(data, pos)
        if scan.error and scans:
            # What follows the last pickle is storage bytes, which torch never unpickles; but a crafted
            # pickle that imports something before breaking off still counts.
            if scan.globals:
                scans.append(scan)
            break
        scans.append(scan)
        if scan.error or scan.end <= pos:
            break
        pos = scan.end
    return scans


def looks_like_pickle(head: bytes) -> bool:
    """A protocol 2-5 pickle starts with PROTO n."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def parses_whole(data: bytes) -> bool:
    """Protocol 0/1 pickles have no magic: the bytes are one only if they parse to a STOP at their very end."""
    if not data or data[:1] not in b"(cdi}]lNIFSVXUTGJKMLabehjkqrtsu":
        return False
    scan = scan_pickle(data)
    return scan.error is None and scan.end == len(data)
