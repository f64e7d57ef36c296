"""numpy `.npy` headers, read as numpy does (a dict literal, parsed with `ast.literal_eval`, never evaluated): an
object dtype means the array is stored as a pickle after the header, which `np.load(allow_pickle=True)` runs."""
from __future__ import annotations

import ast
import struct
from dataclasses import dataclass

MAGIC = b"\x93NUMPY"


class NpyFormatError(Exception):
    """A header numpy would refuse (the message says why)."""


@dataclass(frozen=True)
class NpyHeader:
    """Where the data starts, and whether it is a pickle (an object dtype anywhere in the descr)."""

    data_offset: int
    descr: str
    shape: tuple[int, ...]
    pickled: bool


def read_header(data: bytes) -> NpyHeader:
    if not data.startswith(MAGIC) or len(data) < 10:
        raise NpyFormatError("no .npy magic")
    major = data[6]
    if major == 1:
        (length,), start = struct.unpack_from("<H", data, 8), 10
    elif major in (2, 3):
        (length,), start = struct.unpack_from("<I", data, 8), 12
    else:
        raise NpyFormatError(f"unknown .npy format version {major}.{data[7]}")
    if start + length > len(data):
        raise NpyFormatError(f"the header ({length} bytes) runs past the end of the file")
    text = data[start:start + length].decode("latin-1" if major < 3 else "utf-8", "replace")
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise NpyFormatError(f"the header is not a Python literal ({type(exc).__name__})") from None
    if not isinstance(header, dict) or not {"descr", "shape", "fortran_order"} <= set(header):
        raise NpyFormatError("the header lacks descr, shape or fortran_order")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise NpyFormatError(f"the shape {shape!r} is not a tuple of sizes")
    descr = repr(header["descr"])
    pickled = "'O" in descr or "'|O" in descr or "'<O" in descr or "'>O" in descr
    return NpyHeader(start + length, descr, shape, pickled)
