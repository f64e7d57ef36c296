"""Reduction to a minimal failing subgraph (bisection, then node by node) with its smallest passing neighbour,
on the localisation models (support.localmodels), both sides in real probes."""
from __future__ import annotations

import yaml

from modelcompat.execution.localise import cell_side, reference_side
from modelcompat.execution.reduce import finding_code, reduce
from modelcompat.matrix.spec import load_matrix
from support import localmodels


def _cells(tmp_path):
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(localmodels.MATRIX))
    return {c.id: c for c in load_matrix(tmp_path / "matrix.yaml").cells}


def test_an_fp16_overflow_reduces_to_its_one_node(demo_package, tmp_path):
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.fp16_overflow(), 1.0)
    cell = cell_side(_cells(tmp_path)["host-ort/cpu/ort-fp16"], package, tmp_path)
    result = reduce(package, cell, reference_side(package), "square", "numerical_parity.non_finite", tmp_path / "r")
    failing = result["failing"]
    assert failing.nodes == ["square"] and failing.code == "numerical_parity.non_finite"
    assert list(failing.inputs) == ["h3"] and failing.inputs["h3"].dtype.name == "float16"  # the cell's dtype
    assert result["runs"] == 1  # the single node failed at once: no bisection needed


def test_a_fusion_reduces_to_the_fused_nodes_and_keeps_a_passing_neighbour(demo_package, tmp_path):
    """all vs disable: the nine ops onnxruntime fuses into LayerNormalization are the minimum; one fewer passes."""
    package = localmodels.package_of(demo_package, tmp_path / "pkg", localmodels.decomposed_layer_norm(), 1e-2)
    cells = _cells(tmp_path)
    cell = cell_side(cells["host-ort/cpu/ort-cpu"], package, tmp_path)
    other = cell_side(cells["host-ort/cpu/ort-noopt"], package, tmp_path)
    result = reduce(package, cell, other, "ln_beta", "numerical_parity.tolerance_exceeded", tmp_path / "r")
    failing, passing = result["failing"], result["passing"]
    assert failing.nodes == ["ln_mean", "ln_sub", "ln_pow", "ln_var", "ln_add_eps", "ln_sqrt", "ln_div", "ln_gamma",
                             "ln_beta"]
    assert "shift" not in failing.nodes and list(failing.inputs) == ["shifted"]  # bisection dropped the Add
    assert passing is not None and passing.code is None and len(passing.nodes) == len(failing.nodes) - 1
    assert any("passes" in step for step in result["steps"])


def test_finding_code_prefers_non_finite():
    assert finding_code({"a": {"diverged": True, "non_finite": 0}, "b": {"diverged": True, "non_finite": 3}}) \
        == "numerical_parity.non_finite"
    assert finding_code({"a": {"diverged": True, "non_finite": 0}}) == "numerical_parity.tolerance_exceeded"
    assert finding_code({"a": {"diverged": False, "non_finite": 0}}) is None
