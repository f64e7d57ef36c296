"""safetensors files: an 8-byte header length, a JSON header, raw tensor bytes. No code can ride in them, but a
header loaders disagree on (duplicate keys, offsets out of bounds or overlapping, sizes that do not match the
dtype and shape) is a crafted file: each problem is reported with where it is."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16,
               "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64,
               "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}
MAX_HEADER = 100 << 20  # the reference implementation's limit


def looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 2 <= n <= MAX_HEADER and head[8:9] == b"{"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate keys {dupes}: parsers disagree on which value counts")
    return dict(pairs)


def problems(path: Path) -> list[tuple[int, str]]:
    """(byte offset, problem) for every way the file departs from the format; empty when it is sound."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return [(0, "shorter than the 8-byte header length")]
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            return [(0, f"the header length {n} runs past the file ({size} bytes) or the 100 MiB limit")]
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        return [(8, f"the header is not JSON: {exc}")]
    if not isinstance(header, dict):
        return [(8, "the header is not a JSON object")]
    found: list[tuple[int, str]] = []
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        found.append((8, "__metadata__ is not a map of strings"))
    data_len = size - 8 - n
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            found.append((8, f"tensor {name!r}: an entry needs exactly dtype, shape and data_offsets"))
            continue
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPE_BITS:
            found.append((8, f"tensor {name!r}: unknown dtype {dtype!r}"))
            continue
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            found.append((8, f"tensor {name!r}: shape {shape!r} is not a list of sizes"))
            continue
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            found.append((8, f"tensor {name!r}: data_offsets {offsets!r} fall outside the {data_len}-byte buffer"))
            continue
        count = 1
        for d in shape:
            count *= d
        if (count * _DTYPE_BITS[dtype] + 7) // 8 != offsets[1] - offsets[0]:
            found.append((8, f"tensor {name!r}: {dtype} {shape} needs {(count * _DTYPE_BITS[dtype] + 7) // 8} "
                             f"bytes but data_offsets span {offsets[1] - offsets[0]}"))
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin < end:
            found.append((8, f"tensor {name!r} overlaps the tensor before it (bytes {begin}-{stop})"))
        end = max(end, stop)
    return found
