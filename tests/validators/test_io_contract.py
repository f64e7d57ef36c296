"""`io_contract`'s comparison of the tensors a runtime sees against the manifest's contract."""
from __future__ import annotations

from modelcompat.validators import TensorSpec
from modelcompat.validators.io_contract import compare_tensors

DECLARED = [TensorSpec(name="features", dtype="float32", shape=["batch", 16])]


def _codes(findings) -> list[str]:
    return sorted(f.code for f in findings)


def test_a_matching_tensor_has_no_findings_and_binds_its_symbolic_dims() -> None:
    bindings: dict[str, int] = {}
    seen = [{"name": "features", "dtype": "float32", "shape": [4, 16]}]
    assert compare_tensors("input", DECLARED, seen, "run", bindings) == []
    assert bindings == {"batch": 4}


def test_renamed_retyped_and_reshaped_tensors_are_named() -> None:
    assert _codes(compare_tensors("input", DECLARED, [{"name": "pixels", "dtype": "float32", "shape": ["batch", 16]}],
                                  "load")) == ["io_contract.input_missing", "io_contract.input_unexpected"]
    assert _codes(compare_tensors("input", DECLARED, [{"name": "features", "dtype": "float64", "shape": ["batch", 16]}],
                                  "load")) == ["io_contract.input_dtype"]
    assert _codes(compare_tensors("input", DECLARED, [{"name": "features", "dtype": "float32", "shape": [1]}],
                                  "load")) == ["io_contract.input_rank"]


def test_a_runtime_that_declares_no_static_shapes_is_left_to_the_run_step() -> None:
    seen = [{"name": "features", "dtype": "unknown", "shape": []}]  # what torch reports at load
    assert compare_tensors("input", DECLARED, seen, "load") == []
