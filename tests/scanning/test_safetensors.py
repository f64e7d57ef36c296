"""safetensors headers: sound files pass; duplicate keys, offsets out of bounds or overlapping, wrong sizes do not."""
from __future__ import annotations

import json
import struct

import pytest

from modelcompat.scanning.safetensors import looks_like_safetensors, problems


def _file(tmp_path, header: dict | str, data: bytes):
    raw = header if isinstance(header, str) else json.dumps(header)
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw.encode() + data)
    return path


def test_a_sound_file(tmp_path):
    path = _file(tmp_path, {"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]}}, bytes(12))
    assert looks_like_safetensors(path.read_bytes()[:16]) and problems(path) == []


@pytest.mark.parametrize(("header", "message"), [
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}}, "fall outside"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, "needs 16 bytes"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, "overlaps"),
    ({"w": {"dtype": "PY_OBJ", "shape": [1], "data_offsets": [0, 1]}}, "unknown dtype"),
    ('{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {}}', "duplicate keys"),
])
def test_crafted_headers(tmp_path, header, message):
    assert message in " ".join(p for _, p in problems(_file(tmp_path, header, bytes(16))))
