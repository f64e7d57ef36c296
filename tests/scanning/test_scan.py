"""The scanner against its corpus (tests/support/scan_corpus.py): every malicious sample flagged, naming the callable
it would run and where, with nothing executed; no benign framework checkpoint flagged; and, in one sandboxed
subprocess, proof that each malicious sample really runs its payload when loaded unsafely."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.errors import ArtifactError
from modelcompat.runtime.environments import provision
from modelcompat.scanning import Verdict, scan_file, scan_paths
from support.pkgvariants import ORT_116
from support.scan_corpus import build_benign, build_malicious, prove_markers


@pytest.fixture(scope="module")
def malicious(tmp_path_factory):
    out = tmp_path_factory.mktemp("malicious")
    return out, build_malicious(out)


@pytest.fixture(scope="module")
def benign(tmp_path_factory):
    return build_benign(tmp_path_factory.mktemp("benign"))


def test_every_malicious_sample_is_flagged_naming_what_it_would_run_and_nothing_runs(malicious):
    out, samples = malicious
    assert len({s.kind for s in samples}) >= 13  # one per bypass class in docs/scanning.md
    for sample in samples:
        scan = scan_file(sample.path)
        assert scan.verdict == Verdict.MALICIOUS, (sample.name, scan.to_json())
        assert sample.target in {t.target for t in scan.threats}, (sample.name, scan.to_json())
    assert sorted(p.name for p in (out / "markers").iterdir()) == ["onnx_secret.bin"]  # nothing ran


@pytest.mark.parametrize(("name", "where", "opcode"), [
    ("torch_collect_env_run", "pytorch_model.bin!archive/data.pkl", "GLOBAL"),
    ("memo_stack_global", "model.pkl", "STACK_GLOBAL"),
    ("nested_archive", "bundle.zip!model/model.pt!archive/data.pkl", "GLOBAL"),
    ("unusual_member_name", "payload.npz!inputs (object array, pickle at byte 128)", "GLOBAL"),
])
def test_a_threat_says_where_it_sits(malicious, name, where, opcode):
    _, samples = malicious
    sample = next(s for s in samples if s.name == name)
    threat = next(t for t in scan_file(sample.path).threats if t.target == sample.target)
    assert threat.where.endswith(where) and threat.opcode == opcode and threat.offset is not None


def test_zip_tricks_are_reported_as_such(malicious):
    _, samples = malicious
    kinds = {s.name: [t.message for t in scan_file(s.path).threats if t.kind == "zip_anomaly"] for s in samples
             if s.name.startswith("zip_")}
    assert "named 'archive/datx.pkl' in its local header" in kinds["zip_header_mismatch"][0]
    assert "flag bit 0x1" in kinds["zip_flag_bit"][0]
    assert "duplicate member 'archive/data.pkl'" in kinds["zip_duplicate_member"][0]


def test_no_benign_sample_is_flagged(benign):
    kinds = {s.path.suffix for s in benign}
    assert {".pth", ".bin", ".joblib", ".safetensors", ".pt", ".npy", ".npz", ".onnx", ".pt2"} <= kinds
    for sample in benign:
        scan = scan_file(sample.path)
        assert scan.verdict == Verdict.CLEAN, (sample.name, scan.to_json())
    names = [s.name for s in benign]
    assert len(names) == len(set(names))
    assert {"torchvision_resnet18", "torchvision_resnet18_safetensors", "transformers_bert_pytorch_model", "sklearn_random_forest_compressed",
            "torchvision_resnet18_torchscript", "transformers_bert_save_pretrained"} <= set(names)
    joblib = scan_file(next(s.path for s in benign if s.name == "sklearn_hist_gradient_boosting"))
    assert joblib.pickles == 1 and joblib.globals > 10  # walked to its end past the inline arrays


def test_a_folder_scan_walks_every_file(malicious):
    out, samples = malicious
    scans = scan_paths([out])
    by_path = {Path(s.path): s for s in scans}
    assert all(by_path[s.path].verdict == Verdict.MALICIOUS for s in samples)
    assert by_path[out / "markers" / "onnx_secret.bin"].verdict == Verdict.SKIPPED


def test_a_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(ArtifactError, match="path not found"):
        scan_paths([tmp_path / "nope.pt"])


def test_each_malicious_sample_really_runs_when_loaded_unsafely(tmp_path):
    """The positive control, in a throwaway subprocess: without it 'nothing ran' above would prove nothing."""
    samples = build_malicious(tmp_path / "corpus")
    ort_116 = provision(ORT_116.runtime).python  # onnxruntime >= 1.2x refuses the escaping symlink itself
    proc = prove_markers(samples, tmp_path / "sandbox", str(ort_116))
    markers = tmp_path / "corpus" / "markers"
    missing = [s.name for s in samples if not (markers / s.name).exists()]
    assert missing == [], proc.stderr[-3000:]
    assert (markers / "onnx_external_symlink").read_bytes()[:17] == (markers / "onnx_secret.bin").read_bytes()[:17]
