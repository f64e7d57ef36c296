"""The validator contract: a declared spec (name, version, Params, inputs), `applies_to` and `validate`.

A validator does no orchestration: it reads what the `ValidationContext` offers and returns an
`Outcome`. The harness (`modelcompat.execution.harness`) turns that into a stored `Report`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from modelcompat.matrix.cells import Cell
from modelcompat.model.package import Artifact, ModelPackage
from modelcompat.results.report import Outcome

# What a validator's result can depend on; the cache key of a (cell, validator) hashes exactly these.
Input = Literal[
    "artifact",            # the bytes of the artifact the backend consumes
    "manifest.artifacts",  # declared artifact hashes
    "manifest.contract",   # I/O contract
    "manifest.tolerances",
    "manifest.requirements",
    "manifest.budgets",
    "payload",
    "reference",
    "runtime",             # resolved runtime environment (versions, not just the spec)
    "hardware",
    "backend",
    "timing",              # MODELCOMPAT_TIMING when not the default (partitioned: a share of the cores)
]


class Params(BaseModel):
    """Base of every validator's parameters: unknown keys are refused (it is also the UI form)."""

    model_config = ConfigDict(extra="forbid")


class Validator(ABC):
    """Subclass, set the class attributes, implement `validate` (and `applies_to` when it can skip)."""

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    inputs: ClassVar[tuple[Input, ...]]
    # Whether `validate` runs inference (the harness starts the cell's probe only when some validator does).
    needs_probe: ClassVar[bool] = True
    # Whether `validate` loads its own variant of the model (other options, or a deliberately fresh load),
    # which replaces the load the cell's other checks share: the harness runs such checks after those,
    # so the shared load happens once (a torch.export load costs ~0.5 s each time).
    reloads_model: ClassVar[bool] = False
    # Whether `validate` needs the cell's model loaded to say anything (most probe checks). When the model
    # does not load, the check that found it carries the root cause (its `fail`) and every check of the cell
    # that needs the model is reported `skipped` (`<name>.blocked`, "blocked by <its finding code>").
    # False for checks that diagnose the load themselves (loadability, opset_support, operator_coverage) or
    # do not use the model (environment_parity); the harness runs those before the checks that need it.
    needs_model: ClassVar[bool] = True
    # Slow imports to pay once per run instead of once per local Dask worker: `"module"` or
    # `"module:function"`, run in the process local workers are forked from (modelcompat.orchestration.worker_preload).
    preload: ClassVar[tuple[str, ...]] = ()
    # A gate runs before the cell's runtime is provisioned; if it does not pass (`fail`, or `error`: fail
    # closed), every probe-using check of the cell is reported `skipped` (`<name>.blocked`) and the artifact
    # is never loaded. A gate must be static (`needs_probe = False`): registration refuses one that is not.
    gate: ClassVar[bool] = False
    # A timed check measures the machine (latency, throughput): it takes the machine-wide timing lock
    # exclusively itself (`modelcompat.files.timing_lock.exclusive_timing` on `ctx.timing_lock`). Every
    # other check runs holding that lock shared (the harness does it), so no check of any run on this
    # machine competes with a measurement for cores.
    timed: ClassVar[bool] = False

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        """A reason to skip this cell, or None when the check applies. Default: the backend's artifact exists."""
        fmt = cell.backend.consumes()
        if package.artifact(fmt) is None:
            have = ", ".join(sorted({a.format for a in package.manifest.artifacts}))
            return f"the package has no {fmt} artifact for backend {cell.backend.id} (it has: {have})"
        return None

    def busy(self, ctx: "ValidationContext") -> bool:
        """Whether the check would now have to wait for something shared (e.g. `ctx.timing_lock`).
        The harness then runs the cell's other checks first and this one last, instead of leaving
        the worker idle while it waits. Must be cheap and never block. Default: never busy."""
        return False

    @abstractmethod
    def validate(self, ctx: "ValidationContext", params: Any) -> Outcome:
        """Run the check. Raise nothing for an incompatible artifact: return error findings instead."""


class ValidationContext(ABC):
    """Everything one (cell, validator) check may read or ask for; the harness builds it.

    The cell's probe (its runtime process) is shared by the cell's validators and reached only through
    these methods: a validator never speaks the probe protocol itself. A validator declaring
    `needs_probe = False` gets a context without a runtime, whose probe methods raise `RuntimeError`.

    Attributes:
        cell: the cell checked (runtime, hardware, backend).
        package: the model package checked.
        workdir: a scratch folder of the cell, shared by its validators, deleted after the cell.
        timing_lock: the machine-wide lock file timed work holds, so two timed checks never measure each other.
        capabilities_dir: where learned runtime capabilities (e.g. onnxruntime's maximum opsets) are cached.
    """

    cell: Cell
    package: ModelPackage
    workdir: Path
    timing_lock: Path
    capabilities_dir: Path

    @property
    def artifact(self) -> Artifact:
        """The package's artifact the cell's backend consumes."""
        artifact = self.package.artifact(self.cell.backend.consumes())
        assert artifact is not None, "applies_to() guarantees the backend's artifact exists"
        return artifact

    @property
    def artifact_path(self) -> Path:
        """The package's file as exported (what is hashed and scanned); the cell runs `model_path()`."""
        return self.package.resolve(self.artifact.path)

    @abstractmethod
    def model_path(self) -> Path:
        """The file the cell actually runs: the artifact, or its conversion to the backend's precision.

        For onnxruntime backends at fp16/bf16/int8 the artifact is converted on the host (float32 I/O kept)
        and cached in the workdir (`modelcompat.model.precision`); torch backends are cast by the probe instead.
        A failed conversion is remembered, so each validator of the cell gets the same error without
        converting again.

        Raises:
            ConversionError: the model could not be converted (a `ProbeRequestError` with op `convert`).
        """

    @abstractmethod
    def load(self) -> dict[str, Any]:
        """Load the model the cell runs (`model_path()`) in the probe, once per probe life.

        Returns load time and the I/O the runtime sees; for a converted model also `precision` and
        `converted_artifact`.

        Raises:
            ProbeRequestError: the runtime refused the model (a finding about the artifact), or the model
                could not be converted to the cell's precision (`ConversionError`, op `convert`).
            ProbeError: the probe crashed, hung or ran out of memory (the check cannot run).
        """

    @abstractmethod
    def load_variant(self, artifact: Path | None = None, **options: Any) -> dict[str, Any]:
        """Load another file, or the model the cell runs (`model_path()`) with extra load options.

        `options` are probe load arguments such as `intra_op_threads`. The variant replaces the model
        the probe holds, so the next `load()` / `run_payload()` reloads the cell's model.

        Raises:
            ProbeRequestError / ConversionError / ProbeError: as `load()`.
        """

    @abstractmethod
    def run_loaded(self, name: str) -> dict[str, np.ndarray]:
        """Outputs of one inference on the payload with whatever model the probe holds now (no caching).

        Raises:
            ProbeRequestError / ProbeError: as `load()`.
        """

    @abstractmethod
    def run_payload(self) -> dict[str, np.ndarray]:
        """Outputs of one inference on the package's payload, by output name (cached per load).

        Raises:
            ProbeRequestError / ConversionError / ProbeError: as `load()`.
        """

    @abstractmethod
    def request(self, op: str, **args: Any) -> dict[str, Any]:
        """One other request to the cell's probe, answered in the cell's runtime; returns its reply.

        `op` is one of the probe's operations, e.g. `describe` (runtime version, providers, packages;
        `distributions=[...]` for their versions), `bench` (timed runs of the loaded model),
        `kernel_check` (a session on one provider alone, then a run) or `try_load_many` (which of
        several files load). Tensors travel as `.npz` paths, everything else as JSON.

        Raises:
            ProbeRequestError / ProbeError: as `load()`.
        """

    @abstractmethod
    def installed_version(self, distribution: str) -> str | None:
        """The version of `distribution` installed in the cell's runtime, without building anything.

        The host's own for a host runtime, an already-built venv's for a venv runtime; None when it is
        not installed or the venv is not built yet.
        """
