"""Localising a parity failure to its first diverging node, on real models whose divergence starts at one known
node, each side in its own runtime's probe (host onnxruntime 1.31.1, a 1.16.3 venv, fp16 and unoptimised cells)."""
from __future__ import annotations

import numpy as np
import pytest

from modelcompat.execution.localise import cell_side, localise, reference_side, tensor_stats
from modelcompat.matrix.spec import load_matrix
from support import localmodels


def _cells(tmp_path):
    path = tmp_path / "matrix.yaml"
    import yaml

    path.write_text(yaml.safe_dump(localmodels.MATRIX))
    return {c.id: c for c in load_matrix(path).cells}


def test_an_fp16_overflow_in_the_middle_is_found_at_its_node(demo_package, tmp_path):
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.fp16_overflow(), 1.0)
    cells = _cells(tmp_path)
    doc = localise(package, cell_side(cells["host-ort/cpu/ort-fp16"], package, tmp_path),
                   reference_side(package), tmp_path / "scan", batch=2)
    assert doc["found"] and doc["outputs"]["probabilities"]["diverged"]
    node = doc["node"]
    assert (node["name"], node["op_type"], node["domain"]) == ("square", "Mul", "ai.onnx")
    assert node["outputs"]["h4"]["non_finite"] > 0 and node["outputs"]["h4"]["diverged"]
    # its input is within fp16's tolerance (1e-2) yet not bit-equal: fp16 ran before it, and did not diverge
    h3 = node["inputs"]["h3"]
    assert not h3["diverged"] and 0 < h3["max_abs"] and h3["atol"] == pytest.approx(1e-2)
    assert node["inputs_diverged"] is False
    # every node before it was compared and none diverged: it is the first
    path = [step["node"] for step in doc["paths"]["probabilities"]]
    assert path[0] == "square" and path[1] == "shrink"
    assert all(s["stats"]["diverged"] for s in doc["paths"]["probabilities"] if s["stats"])
    # bounded: batches of 2 over the nodes up to `square`, then the path; never every tensor in one run
    assert doc["runs_per_side"] >= 3 and doc["batch"] == 2


def test_a_divergence_between_two_onnxruntime_releases_is_found_at_the_one_op(demo_package, tmp_path):
    """1.16.3's LayerNormalization gives NaN for a large mean and tiny variance; 1.31.1's does not."""
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.layer_norm(), 1e-2, (5e-2, 1e-2))
    cells = _cells(tmp_path)
    old, new = cells["ort-1.16/cpu/ort-cpu"], cells["host-ort/cpu/ort-cpu"]
    doc = localise(package, cell_side(old, package, tmp_path), cell_side(new, package, tmp_path), tmp_path / "scan")
    assert doc["found"] and doc["node"]["name"] == "layer_norm" and doc["node"]["op_type"] == "LayerNormalization"
    assert doc["node"]["outputs"]["normed"]["non_finite"] > 0
    shifted = doc["node"]["inputs"]["shifted"]  # the Add before it: the same bits on both releases
    assert shifted["max_abs"] == 0.0 and not shifted["diverged"]
    assert doc["node"]["inputs"]["gamma"]["kind"] == "weight" and not doc["node"]["inputs_diverged"]
    assert [s["node"] for s in doc["paths"]["probabilities"]] == ["layer_norm", "relu", "halve"]


def test_a_fusion_that_only_diverges_unmarked_is_found_at_its_last_node(demo_package, tmp_path):
    """graph_optimization all vs disable on 1.31.1: nine ops fused into one LayerNormalization differ by 6e-3.
    Marking the fused ops' tensors prevents the fusion, so the batch scan finds nothing and the node-at-a-time
    pass names the fusion's last node."""
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.decomposed_layer_norm(), 1e-2)
    cells = _cells(tmp_path)
    doc = localise(package, cell_side(cells["host-ort/cpu/ort-cpu"], package, tmp_path),
                   cell_side(cells["host-ort/cpu/ort-noopt"], package, tmp_path), tmp_path / "scan", batch=4)
    assert doc["found"] and doc["marking"] == "one node at a time"
    assert doc["node"]["name"] == "ln_beta" and "fuses" in doc["note"]
    assert not doc["node"]["inputs_diverged"]


def test_sides_that_agree_have_nothing_to_localise(demo_package, tmp_path):
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.fp16_overflow(), 1.0)
    cells = _cells(tmp_path)
    doc = localise(package, cell_side(cells["host-ort/cpu/ort-cpu"], package, tmp_path), reference_side(package),
                   tmp_path / "scan")
    assert not doc["found"] and "nothing to localise" in doc["note"] and doc["runs_per_side"] == 1


def test_tensor_stats():
    a = np.array([1.0, 2.0, np.inf], np.float32)
    e = np.array([1.0, 2.5, 3.0], np.float32)
    stats = tensor_stats(a, e, atol=0.1, rtol=0.0)
    assert stats["diverged"] and stats["non_finite"] == 1 and stats["max_abs"] == pytest.approx(0.5)
    assert stats["mean_abs"] == pytest.approx(0.25) and stats["max_rel"] == pytest.approx(0.2)
    assert tensor_stats(e, e, 0.0, 0.0) == {"max_abs": 0.0, "mean_abs": 0.0, "max_rel": 0.0, "cosine": 1.0,
                                            "non_finite": 0, "diverged": False}
    assert tensor_stats(e, e[:2], 1.0, 1.0)["diverged"]


def test_a_full_scan_compares_every_node_in_bounded_batches(demo_package, tmp_path):
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.fp16_overflow(), 1.0)
    cells = _cells(tmp_path)
    doc = localise(package, cell_side(cells["host-ort/cpu/ort-cpu"], package, tmp_path), reference_side(package),
                   tmp_path / "scan", batch=2, full=True)
    assert not doc["found"] and "full scan" in doc["note"]
    assert doc["tensors_compared"] == 6 and doc["runs_per_side"] == 1 + 3  # the outputs, then 6 tensors by 2
