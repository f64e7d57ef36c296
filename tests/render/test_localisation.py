"""The localisation's HTML drawing and the line a parity finding carries to it."""
from __future__ import annotations

from modelcompat.render.localisation import annotate, html_section, link_text
from support.reportdata import sample_summary

DOC = {"cell": "ort/cpu/fp16", "against": "reference", "found": True, "stored_at": "/s/localisations/r/x.json",
       "node": {"name": "square", "op_type": "Mul", "domain": "ai.onnx", "outputs": {},
                "inputs": {"h3": {"diverged": False, "max_abs": 0.1}, "w": {"kind": "weight", "diverged": False}},
                "inputs_diverged": False},
       "paths": {"y": [
           {"node": "square", "op_type": "Mul", "tensor": "h4",
            "stats": {"max_abs": 12.0, "mean_abs": 7.0, "max_rel": 2e-4, "cosine": 1.0, "non_finite": 5,
                      "diverged": True, "atol": 0.01}},
           {"node": "relu", "op_type": "Relu", "tensor": None, "stats": None},
           {"node": "out", "op_type": "Cast", "tensor": "y",
            "stats": {"max_abs": 0.001, "mean_abs": 1e-4, "max_rel": 1e-3, "cosine": 1.0, "non_finite": 0,
                      "diverged": False, "atol": 0.01}}]}}


def test_bars_per_node_red_where_diverged_and_uncompared_nodes_marked():
    section = html_section([DOC])
    assert section.count('class="node-error"') == 2 and "n/c" in section
    assert 'fill="#d64541"><title>square (Mul): max abs 12' in section  # diverged: red
    assert 'fill="#2e9e5b"><title>out (Cast): max abs 0.001' in section  # within tolerance: green
    assert "5 NaN/Inf" in section and "atol 0.01" in section
    assert html_section([]) == ""


def test_annotate_leads_the_cells_parity_errors_with_the_link():
    summary = sample_summary()
    failing = next(r for r in summary.reports if r.status.value == "fail")
    report = failing.model_copy(update={"validator": "numerical_parity"})  # a failing parity report of that cell
    summary = summary.model_copy(update={"reports": [report if r is failing else r for r in summary.reports]})
    linked = annotate(summary, [{**DOC, "cell": report.cell}])
    after = next(r for r in linked.reports if r.cell == report.cell and r.validator == "numerical_parity")
    errors = [f for f in after.findings if f.severity.value == "error"]
    assert errors and all(f.remediation.startswith(link_text({**DOC, "cell": report.cell})) for f in errors)
    others = [r for r in linked.reports if r.cell != report.cell]
    assert others == [r for r in summary.reports if r.cell != report.cell]
