"""The validator contract: a declared spec (name, version, Params, inputs), `applies_to` and `validate`.

A validator does no orchestration: it reads what the `ValidationContext` offers and returns an
`Outcome`. The harness (`modelcompat.execution.harness`) turns that into a stored `Report`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from modelcompat.matrix.cells import Cell
from modelcompat.model.package import Artifact, ModelPackage
from modelcompat.model.precision import ConversionError, convert_onnx, needs_conversion
from modelcompat.results.report import Outcome

if TYPE_CHECKING:
    from modelcompat.probe.launcher import ProbeSession

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
    # Slow imports to pay once per run instead of once per local Dask worker: `"module"` or
    # `"module:function"`, run in the process local workers are forked from (modelcompat.orchestration.worker_preload).
    preload: ClassVar[tuple[str, ...]] = ()

    def applies_to(self, cell: Cell, package: ModelPackage) -> str | None:
        """A reason to skip this cell, or None when the check applies. Default: the backend's artifact exists."""
        fmt = cell.backend.consumes()
        if package.artifact(fmt) is None:
            have = ", ".join(sorted({a.format for a in package.manifest.artifacts}))
            return f"the package has no {fmt} artifact for backend {cell.backend.id} (it has: {have})"
        return None

    def busy(self) -> bool:
        """Whether the check would now have to wait for something shared (e.g. the machine-wide timing
        lock). The harness then runs the cell's other checks first and this one last, instead of leaving
        the worker idle while it waits. Must be cheap and never block. Default: never busy."""
        return False

    @abstractmethod
    def validate(self, ctx: "ValidationContext", params: Any) -> Outcome:
        """Run the check. Raise nothing for an incompatible artifact: return error findings instead."""


@dataclass
class ValidationContext:
    """Everything one (cell, validator) check may read; the probe is shared by a cell's validators."""

    cell: Cell
    package: ModelPackage
    workdir: Path
    probe: "ProbeSession | None" = None
    _loaded: dict[str, Any] | None = field(default=None, repr=False)
    _outputs: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _model: "Path | ConversionError | None" = field(default=None, repr=False)  # model_path(), memoised

    @property
    def artifact(self) -> Artifact:
        artifact = self.package.artifact(self.cell.backend.consumes())
        assert artifact is not None, "applies_to() guarantees the backend's artifact exists"
        return artifact

    @property
    def artifact_path(self) -> Path:
        """The package's file as exported (what is hashed and scanned); the cell runs `model_path()`."""
        return self.package.resolve(self.artifact.path)

    @property
    def converts(self) -> bool:
        """Whether the cell runs a host-made conversion of the artifact (onnxruntime at fp16/bf16/int8)."""
        return needs_conversion(self.cell.runtime.kind, self.artifact.format, self.cell.backend.precision)

    def model_path(self) -> Path:
        """The file the cell actually runs: the artifact, or its conversion to the backend's precision.

        For onnxruntime backends at fp16/bf16/int8 the artifact is converted on the host (float32 I/O kept)
        and cached in the workdir (`modelcompat.model.precision`); torch backends are cast by the probe instead.
        A failed conversion is remembered, so each validator of the cell gets the same error without
        converting again.

        Raises:
            ConversionError: the model could not be converted (a `ProbeRequestError` with op `convert`).
        """
        if not self.converts:
            return self.artifact_path
        if self._model is None:
            try:
                self._model = convert_onnx(self.artifact_path, self.cell.backend.precision,
                                           self.workdir / "precision")
            except ConversionError as exc:
                self._model = exc
        if isinstance(self._model, ConversionError):
            raise self._model
        return self._model

    def _request_load(self, artifact: Path, converted: bool, **options: Any) -> dict[str, Any]:
        assert self.probe is not None, "this validator declares needs_probe = False"
        loaded = self.probe.request(
            "load",
            artifact=str(artifact),
            format=self.artifact.format,
            backend=self.cell.backend.model_dump(mode="json"),
            input_names=[t.name for t in self.package.manifest.contract.inputs],
            output_names=[t.name for t in self.package.manifest.contract.outputs],
            **options,
        )
        if converted:
            # The probe notes that onnxruntime runs a graph as exported: true, and the graph is the conversion.
            loaded.pop("precision_note", None)
            loaded["precision"] = self.cell.backend.precision
            loaded["converted_artifact"] = str(artifact)
        return loaded

    def load(self) -> dict[str, Any]:
        """Load the model the cell runs (`model_path()`) in the probe, once per probe life.

        Returns load time and the I/O the runtime sees; for a converted model also `precision` and
        `converted_artifact`.

        Raises:
            ProbeRequestError: the runtime refused the model (a finding about the artifact), or the model
                could not be converted to the cell's precision (`ConversionError`, op `convert`).
            ProbeError: the probe crashed, hung or ran out of memory (the check cannot run).
        """
        if self._loaded is None or self.probe is None or not self.probe.holds(self._loaded.get("token")):
            assert self.probe is not None, "this validator declares needs_probe = False"
            self._outputs = None
            self._loaded = None
            self._loaded = self._request_load(self.model_path(), self.converts)
        return self._loaded

    def load_variant(self, artifact: Path | None = None, **options: Any) -> dict[str, Any]:
        """Load another file, or the model the cell runs (`model_path()`) with extra load options.

        `options` are probe load arguments such as `intra_op_threads`. The variant replaces the model
        the probe holds, so the next `load()` / `run_payload()` reloads the cell's model.

        Raises:
            ProbeRequestError / ConversionError / ProbeError: as `load()`.
        """
        assert self.probe is not None, "this validator declares needs_probe = False"
        self._loaded = None
        self._outputs = None
        if artifact is not None:
            return self._request_load(artifact, False, **options)
        return self._request_load(self.model_path(), self.converts, **options)

    def run_loaded(self, name: str) -> dict[str, np.ndarray]:
        """Outputs of one inference on the payload with whatever model the probe holds now (no caching)."""
        assert self.probe is not None, "this validator declares needs_probe = False"
        out = self.workdir / f"outputs-{name}.npz"
        self.probe.request("run", inputs=str(self.package.resolve(self.package.manifest.payload)), outputs=str(out))
        with np.load(out, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}

    def run_payload(self) -> dict[str, np.ndarray]:
        """Outputs of one inference on the package's payload, by output name (cached per load)."""
        loaded = self.load()
        if self._outputs is None:
            out = self.workdir / f"outputs-{loaded['token']}.npz"
            self.probe.request("run", inputs=str(self.package.resolve(self.package.manifest.payload)),
                               outputs=str(out))
            with np.load(out, allow_pickle=False) as npz:
                self._outputs = {k: npz[k] for k in npz.files}
        return self._outputs

