"""Payload/reference checks at build time: names, types and sizes against the contract, with file, field, fix."""
from __future__ import annotations

import numpy as np
import pytest

from modelcompat.errors import InputError
from modelcompat.model.package import Contract, TensorSpec
from modelcompat.model.payloads import check_values, contract_from_values, read_values, unfix_contradicted_dims
from modelcompat.model.values import save_values

CONTRACT = Contract(inputs=[TensorSpec(name="x", dtype="float32", shape=["batch", 4])],
                    outputs=[TensorSpec(name="label", dtype="int64", shape=[1]),
                             TensorSpec(name="probs", type="seq(map(int64,float32))")])


def test_wrong_dtype_names_file_field_and_cast(tmp_path) -> None:
    path = save_values(tmp_path / "p.npz", {"x": np.zeros((2, 4), np.float64)})
    with pytest.raises(InputError) as err:
        check_values(read_values(path, "payload"), CONTRACT.inputs, path, "payload", "input")
    assert err.value.field == "x" and "float64" in str(err.value) and "astype(numpy.float32)" in err.value.fix


def test_a_converter_wrong_fixed_dim_becomes_unknown() -> None:
    fixed = unfix_contradicted_dims(CONTRACT, {"label": np.zeros(8, np.int64), "probs": [{0: 1.0}] * 8})
    assert fixed.outputs[0].shape == ["?"] and fixed.outputs[1].type == "seq(map(int64,float32))"


def test_contract_from_values_describes_non_tensors() -> None:
    c = contract_from_values({"x": np.zeros((2, 4), np.float32)}, {"p": [{0: np.float32(1.0)}]}, output_names=["p"])
    assert c.outputs[0].type == "seq(map(int64,float32))" and c.inputs[0].shape == [2, 4]
