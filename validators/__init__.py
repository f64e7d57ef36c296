"""Validators: one module per check, discovered through the `modelcompat.validators` entry points.

This package is also the whole plugin contract: a validator, built in or third-party, imports everything
it needs from here (`from modelcompat.validators import Validator, ValidationContext, Outcome, ...`).
"""
from modelcompat.errors import ProbeError, ProbeRequestError
from modelcompat.matrix.cells import BackendSpec, Cell, HardwareSpec, RuntimeSpec
from modelcompat.model.package import Artifact, Manifest, ModelPackage, TensorSpec, Tolerance
from modelcompat.model.precision import ConversionError
from modelcompat.results.report import Finding, Outcome, Severity, Status
from modelcompat.validators.base import Input, Params, ValidationContext, Validator

__all__ = [
    "Artifact",
    "BackendSpec",
    "Cell",
    "ConversionError",
    "Finding",
    "HardwareSpec",
    "Input",
    "Manifest",
    "ModelPackage",
    "Outcome",
    "Params",
    "ProbeError",
    "ProbeRequestError",
    "RuntimeSpec",
    "Severity",
    "Status",
    "TensorSpec",
    "Tolerance",
    "ValidationContext",
    "Validator",
]
