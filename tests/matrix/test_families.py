"""Runtime families on the host: kinds, backend rules and formats come from one module per family, and every host
family has its probe-agent half."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelcompat.matrix import families
from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec
from modelcompat.matrix.families import FAMILIES, KINDS, family
from modelcompat.matrix.families import executorch as et_family
from modelcompat.matrix.families import onnxruntime as ort_family
from modelcompat.matrix.families import openvino as ov_family
from modelcompat.matrix.families import torch as torch_family
from modelcompat.matrix.families.base import RuntimeFamily
from modelcompat.probe.process import AGENT_PACKAGE


def test_the_kinds_are_the_family_modules_in_declared_order() -> None:
    assert KINDS == ("onnxruntime", "torch", "openvino", "executorch")
    assert [FAMILIES[k] for k in KINDS] == [ort_family.FAMILY, torch_family.FAMILY, ov_family.FAMILY,
                                            et_family.FAMILY]
    assert all(isinstance(f, RuntimeFamily) and f.distributions and f.key_packages for f in FAMILIES.values())
    modules = {p.stem for p in Path(families.__file__).parent.glob("*.py")} - {"__init__", "base"}
    assert modules == set(KINDS), "a family module not registered in families/__init__.py (or the reverse)"
    with pytest.raises(KeyError, match="known: onnxruntime, torch, openvino, executorch"):
        family("tensorrt")


@pytest.mark.parametrize("kind", KINDS)
def test_every_family_has_its_probe_agent_module_with_the_same_kind(kind: str) -> None:
    """The agent half is read as a file (the host never imports the agent): `FAMILY = <Class>()` whose class says
    `kind = "<kind>"` and lists the distributions the host family lists."""
    source = (AGENT_PACKAGE / f"family_{kind}.py").read_text()
    tree = ast.parse(source)
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    assert "FAMILY" in assigned
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == assigned["FAMILY"].func.id)
    attrs = {t.id: ast.literal_eval(n.value) for n in cls.body if isinstance(n, ast.Assign) for t in n.targets
             if isinstance(t, ast.Name) and isinstance(n.value, (ast.Constant, ast.Tuple))}
    assert attrs["kind"] == kind
    assert tuple(attrs["distributions"]) == family(kind).distributions
    assert {m.name for m in cls.body if isinstance(m, ast.FunctionDef)} >= {"version", "devices", "load", "bind"}


@pytest.mark.parametrize(("backend", "fmt"), [
    ({"runtime": "onnxruntime", "provider": "CPUExecutionProvider"}, "onnx"),
    ({"runtime": "onnxruntime", "provider": "OpenVINOExecutionProvider", "provider_options": {"device_type": "CPU"}},
     "onnx"),
    ({"runtime": "torch", "mode": "eager"}, "pt2"),
    ({"runtime": "torch", "mode": "torchscript"}, "torchscript"),
    ({"runtime": "torch", "mode": "export"}, "pt2"),
    ({"runtime": "openvino", "mode": "onnx"}, "onnx"),
    ({"runtime": "openvino", "mode": "ir", "precision": "bf16"}, "openvino"),
    ({"runtime": "openvino", "mode": "onnx", "provider_options": {"PERFORMANCE_HINT": "LATENCY"}}, "onnx"),
    ({"runtime": "executorch", "mode": "xnnpack"}, "pt2"),
    ({"runtime": "executorch", "mode": "portable"}, "pt2"),
    ({"runtime": "executorch", "mode": "pte"}, "executorch"),
])
def test_each_family_says_which_artifact_a_backend_reads(backend: dict, fmt: str) -> None:
    assert BackendSpec(id="b", **backend).consumes() == fmt


@pytest.mark.parametrize(("backend", "field", "words"), [
    ({"runtime": "openvino"}, "mode", "an openvino backend needs `mode`"),
    ({"runtime": "openvino", "mode": "eager"}, "mode", "`mode: eager` is not an openvino mode"),
    ({"runtime": "openvino", "mode": "onnx", "provider": "CPUExecutionProvider"}, "provider",
     "`provider` is for onnxruntime backends; an openvino backend takes `mode`"),
    ({"runtime": "torch", "mode": "onnx"}, "mode", "`mode: onnx` is not a torch mode"),
    ({"runtime": "torch", "mode": "eager", "provider_options": {"a": 1}}, "provider_options",
     "`provider_options` is for onnxruntime and openvino backends"),
])
def test_backend_rules_come_from_the_family(backend: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        BackendSpec(id="b", **backend)
    error = info.value.errors()[0]
    assert error["loc"] == (field,) and words in error["msg"] and error["ctx"]["fix"]


def test_devices_come_from_the_hardware_axis() -> None:
    assert [family("openvino").device(k) for k in ("cpu", "gpu", "npu", "cuda")] == ["CPU", "GPU", "NPU", None]
    assert family("torch").device("rocm") == "cuda"  # torch's ROCm build answers to "cuda"
    gpu = Cell(runtime=RuntimeSpec(id="ov", kind="openvino", requirements=("openvino==2026.4.1",)),
               hardware=HardwareSpec(id="intel-gpu", kind="gpu", resources={"INTEL_GPU": 1}),
               backend=BackendSpec(id="ov-gpu", runtime="openvino", mode="onnx"))
    assert gpu.id == "ov/intel-gpu/ov-gpu" and gpu.hardware.resources == {"INTEL_GPU": 1}


def test_an_onnxruntime_build_is_the_onnxruntime_family() -> None:
    """onnxruntime-openvino is another build of the same library: its version keys and reports as onnxruntime."""
    assert "onnxruntime-openvino" in family("onnxruntime").distributions
    assert family("openvino").key_packages == ("openvino", "numpy")


def test_the_nightly_matrix_has_openvino_and_onnxruntime_openvino_cells() -> None:
    from modelcompat.matrix.resources import unavailable_reason
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.settings import REPO_ROOT

    cells = {c.id: c for c in load_matrix(REPO_ROOT / "matrices" / "nightly.yaml").cells}
    ov = {i for i in cells if i.startswith("ov-2026.4/")}
    assert {"ov-2026.4/cpu/ov-onnx", "ov-2026.4/cpu/ov-ir", "ov-2026.4/cpu/ov-onnx-fp16",
            "ov-2026.4/intel-gpu/ov-onnx", "ov-2026.4/npu/ov-onnx"} <= ov
    assert not any("/cuda/" in i for i in ov)  # OpenVINO drives no CUDA device
    assert [i for i in cells if i.startswith("ort-openvino/")] == ["ort-openvino/cpu/ort-openvino"]
    assert cells["ort-openvino/cpu/ort-openvino"].runtime.requirements == ("onnxruntime-openvino==1.24.1",)
    assert not any(i.split("/")[1] in ("intel-gpu", "npu") and not i.split("/")[2].startswith("ov-") for i in cells)
    # Intel GPU / NPU cells go to workers offering the device; on this CPU-only cluster they are skipped, with why.
    why = unavailable_reason(cells["ov-2026.4/npu/ov-onnx"], {"tcp://w": {}})
    assert why is not None and "NPU=1" in why
    assert unavailable_reason(cells["ov-2026.4/cpu/ov-onnx"], {"tcp://w": {}}) is None


def test_the_nightly_matrix_has_executorch_cells_on_cpu() -> None:
    from modelcompat.matrix.spec import load_matrix
    from modelcompat.settings import REPO_ROOT
    from support.executorch_cells import EXECUTORCH_REQUIREMENTS

    cells = {c.id: c for c in load_matrix(REPO_ROOT / "matrices" / "nightly.yaml").cells}
    et = sorted(i for i in cells if i.startswith("et-1.5/"))
    assert et == ["et-1.5/cpu/et-portable", "et-1.5/cpu/et-pte", "et-1.5/cpu/et-xnnpack"]
    # The pins the tests' venv uses: one venv in the env cache for both.
    assert cells["et-1.5/cpu/et-xnnpack"].runtime.requirements == EXECUTORCH_REQUIREMENTS
    assert [cells[i].backend.consumes() for i in et] == ["pt2", "executorch", "pt2"]
