"""The matrix axes (runtime, hardware, backend) and the cell they combine into."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from modelcompat.matrix.families import FAMILIES, KINDS, family, modes

# The kinds and modes come from the runtime families (modelcompat/matrix/families/): a new family is a module
# there, not an edit here.
RuntimeKind = Literal[KINDS]  # type: ignore[valid-type]
BackendMode = Literal[modes()]  # type: ignore[valid-type]
# `openvino`: an OpenVINO IR (model.xml, its weights model.bin as the artifact's data file); `executorch`: an
# ExecuTorch program (.pte).
ArtifactFormat = Literal["onnx", "torchscript", "pt2", "openvino", "executorch"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _kind_error(message: str, fix: str) -> PydanticCustomError:
    # Type "axis_kind" with a `fix` in ctx lets error converters show the fix instead of a generic one.
    return PydanticCustomError("axis_kind", message, {"fix": fix})


class RuntimeSpec(_Strict):
    """A runtime: which library and how its environment is made."""

    # The env rules below, also in the JSON schema so editors flag them while typing.
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"env": {"const": "host"}}, "required": ["env"]},
         "then": {"properties": {"requirements": {"maxItems": 0}, "python": {"type": "null"}}}},
        {"if": {"not": {"properties": {"env": {"const": "host"}}, "required": ["env"]}},
         "then": {"required": ["requirements"], "properties": {"requirements": {"minItems": 1}}}},
    ]})

    id: str = Field(description="Short id used in cell ids, e.g. `ort-1.16`.", pattern=r"^[A-Za-z0-9_.+-]+$")
    kind: RuntimeKind = Field(description="Which inference library this runtime provides.")
    env: Literal["host", "venv"] = Field(
        "venv",
        description="`host`: the interpreter modelcompat runs in. `venv`: an isolated venv made with uv "
        "from `requirements`, cached by the hash of its spec.",
    )
    requirements: tuple[str, ...] = Field(
        (),
        description="Pinned requirement set for `env: venv`, e.g. `onnxruntime==1.16.3`, `numpy<2`.",
        validate_default=True,  # so a venv runtime that omits the key is refused too
    )
    python: str | None = Field(None, description="Python for the venv (default: the host's version).")

    # These run per field (not as a model validator) so the error points at `requirements`/`python`.
    # info.data lacks `env` when `env` itself was invalid: that error is reported instead.
    @field_validator("requirements")
    @classmethod
    def _requirements_match_env(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        env = info.data.get("env")
        if env == "venv" and not value:
            raise _kind_error(
                "a venv runtime needs `requirements` (the packages to install into it)",
                "list pinned requirements, e.g. [\"onnxruntime==1.16.3\", \"numpy<2\"], "
                "or use `env: host` for the interpreter modelcompat runs in",
            )
        if env == "host" and value:
            raise _kind_error(
                "a host runtime takes no `requirements` (it is the interpreter modelcompat runs in)",
                "remove `requirements`, or use `env: venv` to get an isolated environment with them",
            )
        if any(not r.strip() for r in value):
            raise _kind_error("a requirement is empty", "remove the empty entry")
        return value

    @field_validator("python")
    @classmethod
    def _python_only_for_venv(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("env") == "host":
            raise _kind_error("`python` applies to venv runtimes only",
                              "remove `python`, or use `env: venv`")
        return value

    def spec_hash(self) -> str:
        """Hash of what defines the environment (not the id): two runtimes with one spec share a venv."""
        spec = {"kind": self.kind, "env": self.env, "requirements": sorted(self.requirements), "python": self.python}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class HardwareSpec(_Strict):
    """A hardware target and what a Dask worker must offer to run on it."""

    id: str = Field(description="Short id used in cell ids, e.g. `cpu`, `cuda`.", pattern=r"^[A-Za-z0-9_.+-]+$")
    kind: Literal["cpu", "cuda", "rocm", "gpu", "npu"] = Field(
        "cpu", description="Device family (`gpu`/`npu`: Intel GPU and NPU, as OpenVINO names them).")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Dask worker resources the cell needs, e.g. `{GPU: 1}`."
    )


def _backend_rules() -> list[dict[str, Any]]:
    """Per family: the backend keys it requires and refuses, as JSON-schema if/then rules for editors."""
    rules = []
    for fam in FAMILIES.values():
        props: dict[str, Any] = {"provider": {"type": "string"} if fam.provider else {"type": "null"},
                                 "mode": {"enum": list(fam.modes)} if fam.modes else {"type": "null"}}
        if not fam.provider_options:
            props["provider_options"] = {"maxProperties": 0}
        required = ["provider"] if fam.provider else ["mode"] if fam.modes else []
        rules.append({"if": {"properties": {"runtime": {"const": fam.kind}}, "required": ["runtime"]},
                      "then": {"required": required, "properties": props}})
    return rules


def _a(kind: str) -> str:
    """`an onnxruntime`, `a torch`, `an openvino`."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def _takers(flag: str) -> str:
    """`onnxruntime and openvino`: the families whose backends take `provider`, `mode` or `provider_options`."""
    kinds = [f.kind for f in FAMILIES.values() if getattr(f, flag)]
    return " and ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)


class BackendSpec(_Strict):
    """How the artifact is executed: an onnxruntime execution provider, a torch or OpenVINO mode, and a precision."""

    # Which keys a backend takes depends on its runtime family (modelcompat/matrix/families/).

    # The kind rules below, also in the JSON schema so editors flag them while typing.
    model_config = ConfigDict(json_schema_extra={"allOf": _backend_rules()})

    id: str = Field(description="Short id used in cell ids, e.g. `ort-cpu`.", pattern=r"^[A-Za-z0-9_.+-]+$")
    runtime: RuntimeKind = Field(description="The runtime kind this backend runs on.")
    provider: str | None = Field(
        None,
        description="onnxruntime execution provider, e.g. `CPUExecutionProvider` or `OpenVINOExecutionProvider` "
        "(onnxruntime only).",
        validate_default=True,  # so an onnxruntime backend that omits it is refused
    )
    provider_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Options passed to the execution provider (onnxruntime), or "
        "compile properties (openvino, e.g. `PERFORMANCE_HINT: LATENCY`)."
    )
    graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation level."
    )
    mode: BackendMode | None = Field(
        None,
        description="torch execution mode: `eager` runs the .pt2 program's module, `torchscript` a "
        "TorchScript archive, `export` the .pt2 program decomposed to core ATen (torch only). OpenVINO: `onnx` "
        "reads the ONNX artifact with its ONNX frontend, `ir` the package's OpenVINO IR (openvino only). ExecuTorch: "
        "`xnnpack`/`portable` lower the .pt2 in the cell (XNNPACK delegate, or portable kernels only), `pte` runs "
        "the package's .pte program (executorch only).",
        validate_default=True,  # so a torch or openvino backend that omits it is refused
    )
    precision: Precision = Field("fp32", description="Numeric precision the backend runs at.")

    # Per-field validators (fields are validated in declaration order, so `runtime` is in info.data
    # unless it was itself invalid) keep the error location on the offending key.
    @field_validator("provider")
    @classmethod
    def _provider_matches_runtime(cls, value: str | None, info: ValidationInfo) -> str | None:
        runtime = info.data.get("runtime")
        if runtime not in FAMILIES:
            return value
        fam = family(runtime)
        if fam.provider and not value:
            raise _kind_error(f"{_a(runtime)} backend needs `provider`",
                              "add e.g. `provider: CPUExecutionProvider` or `provider: CUDAExecutionProvider`")
        if not fam.provider and value is not None:
            raise _kind_error(f"`provider` is for {_takers('provider')} backends; {_a(runtime)} backend takes `mode`",
                              f"remove `provider` and set {fam.mode_hint()}")
        return value

    @field_validator("provider_options")
    @classmethod
    def _options_only_where_taken(cls, value: dict[str, str | int | float | bool],
                                  info: ValidationInfo) -> dict[str, str | int | float | bool]:
        runtime = info.data.get("runtime")
        if value and runtime in FAMILIES and not family(runtime).provider_options:
            raise _kind_error(f"`provider_options` is for {_takers('provider_options')} backends",
                              "remove `provider_options`")
        return value

    @field_validator("mode")
    @classmethod
    def _mode_matches_runtime(cls, value: str | None, info: ValidationInfo) -> str | None:
        runtime = info.data.get("runtime")
        if runtime not in FAMILIES:
            return value
        fam = family(runtime)
        if fam.modes and value is None:
            raise _kind_error(f"{_a(runtime)} backend needs `mode`", f"add {fam.mode_hint()}")
        if not fam.modes and value is not None:
            raise _kind_error(f"`mode` is for {_takers('modes')} backends; {_a(runtime)} backend takes `provider`",
                              "remove `mode`")
        if fam.modes and value not in fam.modes:
            raise _kind_error(f"`mode: {value}` is not {_a(runtime)} mode", f"use {fam.mode_hint()}")
        return value

    def consumes(self) -> ArtifactFormat:
        """The artifact format this backend executes."""
        return family(self.runtime).consumes(self)  # type: ignore[return-value]


class Cell(_Strict):
    """One point of the matrix: runtime × hardware × backend."""

    runtime: RuntimeSpec
    hardware: HardwareSpec
    backend: BackendSpec

    @property
    def id(self) -> str:
        """`runtime/hardware/backend`."""
        return f"{self.runtime.id}/{self.hardware.id}/{self.backend.id}"
