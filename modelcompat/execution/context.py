"""The `ValidationContext` the harness hands validators: the contract's methods spoken to the cell's probe.

Validators see only the contract (`modelcompat.validators.ValidationContext`); the probe protocol, the
model-load bookkeeping, the precision conversion and what the run knows (lock and cache paths, the
environment) live here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from modelcompat import settings
from modelcompat.errors import ProbeRequestError
from modelcompat.matrix.cells import Cell
from modelcompat.matrix.families import family
from modelcompat.model.package import ModelPackage
from modelcompat.model.precision import ConversionError, convert_onnx, needs_conversion
from modelcompat.model.values import load_values
from modelcompat.probe.launcher import ProbeSession
from modelcompat.runtime.environments import RuntimeEnv, resolved_versions
from modelcompat.validators.base import ValidationContext


@dataclass
class CellContext(ValidationContext):
    """One cell's context: shared by its validators, holding the cell's probe (None when none runs).

    `env` is the cell's runtime environment if it is already built (never built here); `timing_lock` and
    `capabilities_dir` default to the settings of this process (a Dask worker gets the run's environment).
    `load_refusals` counts the refused loads of the cell's model (the harness reads it around each check to
    find the check that met the root cause); a refused `load()` is remembered and raised again, not retried.
    """

    cell: Cell
    package: ModelPackage
    workdir: Path
    probe: ProbeSession | None = None
    env: RuntimeEnv | None = None
    timing_lock: Path = field(default_factory=settings.timing_lock_path)
    capabilities_dir: Path = field(default_factory=settings.capabilities_dir)
    cores: tuple[int, ...] | None = None  # partitioned timing: the CPUs the cell's probe is pinned to
    load_refusals: int = field(default=0, init=False)
    _refused: ProbeRequestError | None = field(default=None, init=False, repr=False)
    _loaded: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _outputs: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False)
    _model: Path | ConversionError | None = field(default=None, init=False, repr=False)  # model_path(), memoised

    @property
    def converts(self) -> bool:
        """Whether the cell runs a host-made conversion of the artifact (onnxruntime at fp16/bf16/int8)."""
        return needs_conversion(self.cell.runtime.kind, self.artifact.format, self.cell.backend.precision)

    def _session(self) -> ProbeSession:
        if self.probe is None:
            raise RuntimeError("this cell has no probe: a validator declaring needs_probe = False "
                               "cannot load or run the model")
        return self.probe

    def model_path(self) -> Path:
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
        if self.cores and "intra_op_threads" not in options:
            # A pinned probe runs one intra-op thread per core it has: a runtime's default counts the machine's
            # cores (onnxruntime does), and more threads than cores would time the scheduler, not the model.
            options["intra_op_threads"] = len(self.cores)
        loaded = self._session().request(
            "load",
            artifact=str(artifact),
            format=self.artifact.format,
            backend=self.cell.backend.model_dump(mode="json"),
            # The device the cell's hardware maps to in its runtime family (OpenVINO: CPU, GPU, NPU).
            device=family(self.cell.runtime.kind).device(self.cell.hardware.kind),
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
        probe = self._session()
        if self._refused is not None:
            # The same file in the same runtime: the answer would be the same (a crash is not remembered).
            self.load_refusals += 1
            raise self._refused
        if self._loaded is None or not probe.holds(self._loaded.get("token")):
            self._outputs = None
            self._loaded = None
            try:
                self._loaded = self._request_load(self.model_path(), self.converts)
            except ProbeRequestError as exc:  # ConversionError included: the cell's model cannot be had
                self._refused = exc
                self.load_refusals += 1
                raise
        return self._loaded

    def load_variant(self, artifact: Path | None = None, **options: Any) -> dict[str, Any]:
        self._session()
        self._loaded = None
        self._outputs = None
        if artifact is not None:
            return self._request_load(artifact, False, **options)
        try:
            return self._request_load(self.model_path(), self.converts, **options)
        except ProbeRequestError:  # other options may load where the plain load did not: not remembered
            self.load_refusals += 1
            raise

    def _run(self, out: Path) -> dict[str, np.ndarray]:
        self._session().request("run", inputs=str(self.package.resolve(self.package.manifest.payload)),
                                outputs=str(out))
        return load_values(out)  # tensors, and sequences/maps/None (docs/contract.md "Files")

    def run_loaded(self, name: str) -> dict[str, np.ndarray]:
        return self._run(self.workdir / f"outputs-{name}.npz")

    def run_payload(self) -> dict[str, np.ndarray]:
        loaded = self.load()
        if self._outputs is None:
            self._outputs = self._run(self.workdir / f"outputs-{loaded['token']}.npz")
        return self._outputs

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        return self._session().request(op, **args)

    def installed_version(self, distribution: str) -> str | None:
        if self.cell.runtime.env == "host":
            try:
                return metadata.version(distribution)
            except metadata.PackageNotFoundError:
                return None
        resolved = resolved_versions(self.env).get(distribution) if self.env is not None else None
        return str(resolved) if resolved else None
