"""The contract type grammar: parse/print round trips, errors that say where, values matched to types."""
from __future__ import annotations

import numpy as np
import pytest

from modelcompat.model.types import MapType, SeqType, TensorType, TypeSyntaxError, mismatch, parse_type, type_of


@pytest.mark.parametrize("text", ["tensor(float32)[batch,4]", "seq(map(int64,float32))", "optional(tensor(int64))",
                                  "tensor(string)[batch]", "map(string,seq(tensor(float32)[?,3]))", "tensor(bool)[]"])
def test_round_trip(text: str) -> None:
    assert str(parse_type(text)) == text


def test_spaces_and_bare_dtypes_normalize() -> None:
    assert parse_type(" seq( map( int64 , tensor(float32) ) ) ") == SeqType(MapType("int64", TensorType("float32")))


@pytest.mark.parametrize(("text", "says"), [("seq(map(float32,int64))", "map key type 'float32'"),
                                            ("tensor(float32)[a,", "expected a dim"),
                                            ("seq(float32) extra", "unexpected 'extra'")])
def test_syntax_errors_say_what_and_where(text: str, says: str) -> None:
    with pytest.raises(TypeSyntaxError, match=says):
        parse_type(text)


def test_mismatch_names_the_path_and_binds_dims() -> None:
    want = parse_type("seq(map(int64,float32))")
    assert mismatch([{0: np.float32(0.5)}, {0: 0.5}], want, "probs") is None
    assert mismatch([{0: 0.5}, {"a": 0.5}], want, "probs") == \
        "probs[1] has a string key 'a', the contract says keys are int64"
    bound: dict[str, int] = {}
    assert mismatch(np.zeros((8, 4), np.float32), parse_type("tensor(float32)[batch,4]"), "x", bound) is None
    assert "batch is 8 elsewhere" in mismatch(np.zeros((2, 4), np.float32), parse_type("tensor(float32)[batch,4]"),
                                              "y", bound)
    assert type_of(np.array(["a"])) == TensorType("string", (1,))
