"""The contract itself (validators/base.py): Validator's defaults and hooks, ValidationContext's shared part."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelcompat.validators import ValidationContext, Validator
from modelcompat.validators.base import Params
from support.pkgvariants import HOST_ORT, TORCHSCRIPT


class _Minimal(Validator):
    name = "minimal"
    version = "1"
    description = "d"
    inputs = ("artifact",)

    def validate(self, ctx, params):  # pragma: no cover - never run
        raise NotImplementedError


def test_a_validator_declares_only_what_differs_from_the_defaults(demo_package) -> None:
    v = _Minimal()
    assert (v.gate, v.needs_probe, v.reloads_model, v.preload) == (False, True, False, ())
    assert v.Params is Params and v.busy(None) is False
    assert v.applies_to(HOST_ORT, demo_package) is None  # the demo has the onnx artifact ort-cpu consumes
    onnx_only = demo_package.manifest.model_copy(update={"artifacts": [
        a for a in demo_package.manifest.artifacts if a.format == "onnx"]})
    demo_package_onnx_only = type(demo_package)(demo_package.root, onnx_only)
    reason = v.applies_to(TORCHSCRIPT, demo_package_onnx_only)
    assert reason and "torchscript" in reason and "onnx" in reason  # names what is missing and what there is


def test_the_context_is_abstract_and_derives_the_artifact_from_cell_and_package(demo_package) -> None:
    with pytest.raises(TypeError):
        ValidationContext()  # the harness's CellContext implements it; a plugin never builds one

    class _Static(ValidationContext):  # the abstract methods only, to reach the shared properties
        model_path = load = load_variant = run_loaded = run_payload = request = installed_version = None

    ctx = _Static()
    ctx.cell, ctx.package = HOST_ORT, demo_package
    assert ctx.artifact.format == "onnx"
    assert ctx.artifact_path == Path(demo_package.root) / ctx.artifact.path
