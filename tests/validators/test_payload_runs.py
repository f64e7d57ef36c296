"""Every payload of a package runs on the cell's model; a later payload the runtime refuses is recorded."""
from __future__ import annotations

import numpy as np

from modelcompat.model.package import Contract, Manifest, ModelPackage, TensorSpec
from modelcompat.validators.payload_runs import PayloadRun, changed_dims, input_bindings


def _package(tmp_path) -> ModelPackage:
    manifest = Manifest(name="m", version="1", artifacts=[{"format": "onnx", "path": "m.onnx", "sha256": "0" * 64}],
                        contract=Contract(inputs=[TensorSpec(name="x", dtype="float32", shape=["batch", "seq"])],
                                          outputs=[TensorSpec(name="y", dtype="float32", shape=["batch"])]),
                        payload="p.npz", payloads=[{"payload": "p1.npz", "reference": "r1.npz"}])
    return ModelPackage(tmp_path, manifest)


def test_bindings_and_changed_dims_name_the_sizes(tmp_path) -> None:
    package = _package(tmp_path)
    assert [p.payload for p in package.manifest.all_payloads()] == ["p.npz", "p1.npz"]
    first = PayloadRun("payload", package.manifest.all_payloads()[0], {"x": np.zeros((8, 16))})
    other = PayloadRun("payloads[0]", package.manifest.all_payloads()[1], {"x": np.zeros((1, 16))})
    first.bindings = input_bindings(package, first.inputs)
    other.bindings = input_bindings(package, other.inputs)
    assert first.bindings == {"batch": 8, "seq": 16} and other.suffix == "_p0" and first.suffix == ""
    assert changed_dims(first, other) == "batch=1 (the first payload has 8)"
