"""Values files: tensors, strings, sequences, maps and None through one .npz, never pickled."""
from __future__ import annotations

import numpy as np
import pytest

from modelcompat.model.values import STRUCTURE_KEY, ValuesFileError, load_values, save_values
from modelcompat.probe.agent.modelcompat_probe_agent.common import encode_values


def test_round_trip_keeps_types_and_order(tmp_path) -> None:
    values = {"label": np.array([1, 0]), "probs": [{0: np.float32(0.25), 1: np.float32(0.75)}, {0: 1.0, 1: 0.0}],
              "text": np.array(["ä", "b"]), "maybe": None, "nested": {"k": [np.ones(2)]}}
    path = save_values(tmp_path / "v.npz", values)
    with np.load(path, allow_pickle=False) as npz:  # readable without pickle, every array
        assert STRUCTURE_KEY in npz.files and all(npz[k].dtype.kind != "O" for k in npz.files)
    back = load_values(path)
    assert list(back) == ["label", "text", "probs", "maybe", "nested"] or set(back) == set(values)
    assert back["probs"][1] == {0: 1.0, 1: 0.0} and back["maybe"] is None
    assert back["text"].tolist() == ["ä", "b"] and back["nested"]["k"][0].tolist() == [1.0, 1.0]


def test_agent_encoding_is_what_the_host_reads(tmp_path) -> None:
    """The probe writes ZipMap rows with the contract's value dtype (onnxruntime gives Python floats)."""
    arrays = encode_values({"p": [{0: 0.5, 1: 0.5}]}, {"p": "seq(map(int64,float32))"})
    np.savez(tmp_path / "o.npz", **arrays)
    row = load_values(tmp_path / "o.npz")["p"][0]
    assert row == {0: 0.5, 1: 0.5} and isinstance(row[0], np.float32)


def test_broken_structure_names_the_value(tmp_path) -> None:
    np.savez(tmp_path / "bad.npz", **{STRUCTURE_KEY: np.array('{"p": {"seq": [{"tensor": "p/0"}]}}')})
    with pytest.raises(ValuesFileError) as err:
        load_values(tmp_path / "bad.npz")
    assert err.value.field == "p" and "missing array 'p/0'" in str(err.value)
