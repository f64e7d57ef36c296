"""Packages with a known onnxruntime window, built once per session (tests/support/rangemodels.py)."""
from __future__ import annotations

import pytest

from modelcompat.matrix.cells import BackendSpec, HardwareSpec
from modelcompat.ranges.probe import DEFAULT_VALIDATORS, Target
from support.rangemodels import deform_conv_package, gelu_package, opset21_package


@pytest.fixture(scope="session")
def opset21(tmp_path_factory: pytest.TempPathFactory):
    return opset21_package(tmp_path_factory.mktemp("ranges") / "add21")


@pytest.fixture(scope="session")
def gelu(tmp_path_factory: pytest.TempPathFactory):
    return gelu_package(tmp_path_factory.mktemp("ranges") / "gelu20")


@pytest.fixture(scope="session")
def deform_conv(tmp_path_factory: pytest.TempPathFactory):
    return deform_conv_package(tmp_path_factory.mktemp("ranges") / "deformconv19")


@pytest.fixture
def ort_cpu() -> Target:
    return Target("onnxruntime", HardwareSpec(id="cpu"),
                  BackendSpec(id="ort-cpu", runtime="onnxruntime", provider="CPUExecutionProvider"), DEFAULT_VALIDATORS)
