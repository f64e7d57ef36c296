"""The remediation's records: the fix kept in the store beside the run, shown on the findings it fixes."""
from __future__ import annotations

from pathlib import Path

from modelcompat.baseline.stored_run import summary_from_store
from modelcompat.remediation.records import annotate, fix_text, markdown, publish_fixes, stored_fixes
from modelcompat.remediation.verify import rerun
from modelcompat.store import Store
from support.remediation_models import conv_model, matrix, package


def test_a_kept_fix_leads_the_findings_remediation(tmp_path: Path) -> None:
    pkg = package(conv_model(21, 10), tmp_path / "pkg")
    run = rerun(matrix=matrix(tmp_path / "matrix.yaml"), model=pkg.root, validators=["loadability"],
                cells=["ort-1.16/cpu/ort-cpu"], store=str(tmp_path / "store"))
    store = Store(tmp_path / "store")
    text = fix_text("modelcompat remediate R --out o", "o/opset-down-19/package", ["ort-1.16/cpu/ort-cpu"])
    assert text == ("fix: verified: modelcompat remediate R --out o produced o/opset-down-19/package; "
                    "passes on ort-1.16/cpu/ort-cpu and all other cells")
    assert stored_fixes(store, run.record.run_id) == {}
    publish_fixes(store, run.record.run_id, [{"cell": "ort-1.16/cpu/ort-cpu",
                                              "code": "loadability.ir_version_unsupported", "fix": text}])
    summary, _ = summary_from_store(store, run.record.run_id)
    shown = annotate(summary, stored_fixes(store, run.record.run_id))
    [finding] = shown.reports[0].findings
    assert finding.remediation.startswith(text + "; otherwise: ")
    assert summary.reports[0].findings[0].remediation == finding.remediation.split("; otherwise: ", 1)[1]


def test_markdown_lists_verified_fixes_then_rejections() -> None:
    document = {"run_id": "R", "model": {"name": "m", "version": "1"}, "targets": ["a/b/c"], "candidates": [
        {"id": "ir-rewrite-9", "label": "IR 9", "verified": False, "reasons": ["IR 9 cannot hold this model"]},
        {"id": "opset-down-19", "label": "ai.onnx opset 19", "verified": True, "package": "o/p",
         "now_passing": ["a/b/c"], "kept_passing": ["x/y/z"], "parity": {"x/y/z": {"max_abs_diff": 0.0}},
         "code": "convert_version(m, 19)", "command": "modelcompat remediate R"}]}
    text = markdown(document)
    assert text.index("## Verified fixes") < text.index("opset-down-19") < text.index("## Tried and rejected")
    assert "- **ir-rewrite-9** (IR 9): IR 9 cannot hold this model" in text
