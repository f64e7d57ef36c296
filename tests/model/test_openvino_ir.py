"""OpenVINO IR read statically on the host (no openvino): detected from its bytes, its contract from the XML,
its weights file required, a document type declaration refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.errors import ArtifactError
from modelcompat.model.build import detect_formats
from modelcompat.model.inspect import detect_format, read_contract
from modelcompat.model.openvino_ir import ir_io, looks_like_ir, weights_path

# What openvino.save_model writes for a two-layer MLP (trimmed to the layers that matter here).
IR = """<?xml version="1.0"?>
<net name="onnx_Frontend_IR" version="11">
  <layers>
    <layer id="0" name="features" type="Parameter" version="opset1">
      <data shape="?,16" element_type="f32" />
      <output><port id="0" precision="FP32" names="features"><dim>-1</dim><dim>16</dim></port></output>
    </layer>
    <layer id="1" name="/Relu" type="Relu" version="opset1">
      <input><port id="0" precision="FP32"><dim>-1</dim><dim>16</dim></port></input>
      <output><port id="1" precision="FP32" names="probabilities,probs_alias"><dim>-1</dim><dim>16</dim></port></output>
    </layer>
    <layer id="2" name="probabilities" type="Result" version="opset1">
      <input><port id="0" precision="FP32"><dim>-1</dim><dim>16</dim></port></input>
    </layer>
  </layers>
  <edges>
    <edge from-layer="0" from-port="0" to-layer="1" to-port="0" />
    <edge from-layer="1" from-port="1" to-layer="2" to-port="0" />
  </edges>
</net>
"""


def _ir(folder: Path, text: str = IR, weights: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    xml = folder / "net.xml"
    xml.write_text(text)
    if weights:
        weights_path(xml).write_bytes(b"\0" * 8)
    return xml


def test_an_ir_is_detected_and_its_contract_read(tmp_path: Path) -> None:
    xml = _ir(tmp_path)
    assert looks_like_ir(xml.read_bytes()[:64]) and detect_format(xml) == "openvino"
    assert detect_formats([xml]) == {"openvino": xml}
    inputs, outputs = ir_io(xml)
    assert inputs == [{"name": "features", "dtype": "float32", "shape": ["d0", 16]}]
    assert outputs == [{"name": "probabilities", "dtype": "float32", "shape": ["d0", 16]}]
    contract = read_contract(xml, "openvino")
    assert contract is not None and [t.name for t in contract.outputs] == ["probabilities"]


def test_an_ir_without_its_weights_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="net.bin is missing") as info:
        detect_format(_ir(tmp_path, weights=False))
    assert "same name" in info.value.fix


@pytest.mark.parametrize(("text", "words"), [
    ('<?xml version="1.0"?>\n<!DOCTYPE net [<!ENTITY a "aaaa">]>\n<net><layers/></net>', "document type"),
    ('<?xml version="1.0"?>\n<net name="x" version="11"><layers>', "not a readable OpenVINO IR"),
])
def test_a_bad_ir_is_an_artifact_error(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ArtifactError, match=words):
        detect_format(_ir(tmp_path, text))


def test_other_xml_is_not_taken_for_an_ir(tmp_path: Path) -> None:
    other = tmp_path / "pom.xml"
    other.write_text('<?xml version="1.0"?>\n<project></project>\n')
    assert not looks_like_ir(other.read_bytes()[:64])
    with pytest.raises(ArtifactError):
        detect_format(other)


def test_check_needs_the_onnx_beside_an_ir_and_keys_the_ir_weights(tmp_path: Path) -> None:
    from modelcompat.errors import InputError
    from modelcompat.model.check_package import check_key, read_check_contract

    xml = _ir(tmp_path)
    with pytest.raises(InputError, match="OpenVINO IR alone") as info:
        read_check_contract({"openvino": xml})
    assert "modelcompat check model.onnx model.xml" in info.value.fix
    before = check_key({"openvino": xml}, {})
    weights_path(xml).write_bytes(b"\1" * 8)  # other weights, same graph: another check
    assert check_key({"openvino": xml}, {}) != before
