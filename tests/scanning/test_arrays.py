""".npy headers: object dtypes found (their data is a pickle), bad headers refused, never evaluated."""
from __future__ import annotations

import io

import numpy as np
import pytest

from modelcompat.scanning.arrays import NpyFormatError, read_header


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_plain_and_object_arrays():
    plain = read_header(_npy(np.zeros((2, 3), np.float32)))
    assert plain.shape == (2, 3) and not plain.pickled
    obj = read_header(_npy(np.array([{"a": 1}], dtype=object)))
    assert obj.pickled and obj.data_offset % 64 == 0


def test_a_header_that_is_code_is_refused_not_run():
    header = b"__import__('os').system('id')".ljust(54) + b"\n"
    with pytest.raises(NpyFormatError, match="not a Python literal"):
        read_header(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
