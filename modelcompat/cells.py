"""The matrix axes (runtime, hardware, backend) and the cell they combine into."""
from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RuntimeKind = Literal["onnxruntime", "torch"]
ArtifactFormat = Literal["onnx", "torchscript", "pt2"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuntimeSpec(_Strict):
    """A runtime: which library and how its environment is made."""

    id: str = Field(description="Short id used in cell ids, e.g. `ort-1.16`.", pattern=r"^[A-Za-z0-9_.+-]+$")
    kind: RuntimeKind = Field(description="Which inference library this runtime provides.")
    env: Literal["host", "venv"] = Field(
        "venv",
        description="`host`: the interpreter modelcompat runs in. `venv`: an isolated venv made with uv "
        "from `requirements`, cached by the hash of its spec.",
    )
    requirements: tuple[str, ...] = Field(
        (), description="Pinned requirement set for `env: venv`, e.g. `onnxruntime==1.16.3`, `numpy<2`."
    )
    python: str | None = Field(None, description="Python for the venv (default: the host's version).")

    def spec_hash(self) -> str:
        """Hash of what defines the environment (not the id): two runtimes with one spec share a venv."""
        spec = {"kind": self.kind, "env": self.env, "requirements": sorted(self.requirements), "python": self.python}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class HardwareSpec(_Strict):
    """A hardware target and what a Dask worker must offer to run on it."""

    id: str = Field(description="Short id used in cell ids, e.g. `cpu`, `cuda`.", pattern=r"^[A-Za-z0-9_.+-]+$")
    kind: Literal["cpu", "cuda", "rocm"] = Field("cpu", description="Device family.")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Dask worker resources the cell needs, e.g. `{GPU: 1}`."
    )


class BackendSpec(_Strict):
    """How the artifact is executed: an onnxruntime execution provider or a torch mode, and a precision."""

    id: str = Field(description="Short id used in cell ids, e.g. `ort-cpu`.", pattern=r"^[A-Za-z0-9_.+-]+$")
    runtime: RuntimeKind = Field(description="The runtime kind this backend runs on.")
    provider: str | None = Field(
        None, description="onnxruntime execution provider, e.g. `CPUExecutionProvider` (onnxruntime only)."
    )
    provider_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Options passed to the execution provider."
    )
    graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation level."
    )
    mode: Literal["eager", "torchscript", "export"] | None = Field(
        None,
        description="torch execution mode: `eager` runs the .pt2 program's module, `torchscript` a "
        "TorchScript archive, `export` the .pt2 program decomposed to core ATen (torch only).",
    )
    precision: Precision = Field("fp32", description="Numeric precision the backend runs at.")

    def consumes(self) -> ArtifactFormat:
        """The artifact format this backend executes."""
        if self.runtime == "onnxruntime":
            return "onnx"
        return "torchscript" if self.mode == "torchscript" else "pt2"


class Cell(_Strict):
    """One point of the matrix: runtime × hardware × backend."""

    runtime: RuntimeSpec
    hardware: HardwareSpec
    backend: BackendSpec

    @property
    def id(self) -> str:
        """`runtime/hardware/backend`."""
        return f"{self.runtime.id}/{self.hardware.id}/{self.backend.id}"
