"""The model package: a folder with `modelcompat.yaml` (artifacts + hashes, I/O contract, payload, tolerances)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from modelcompat.errors import ManifestError
from modelcompat.files.yaml_reader import (
    load_yaml_mapping,
    pydantic_error_to_input_error,
    strip_lines,
)
from modelcompat.matrix.cells import ArtifactFormat
from modelcompat.model.provenance import Provenance
from modelcompat.model.types import TensorType, TypeSyntaxError, ValueType, parse_type

MANIFEST_NAME = "modelcompat.yaml"
MANIFEST_SCHEMA_VERSION = 1

Dim = int | str  # an int is a fixed size, a str a symbolic dimension (`batch`)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _inside(value: str) -> str:
    p = Path(value)
    if p.is_absolute() or ".." in p.parts:
        raise ValueError("must be a path inside the package folder (no absolute path, no '..')")
    return value


class DataFile(_Strict):
    """An external-data file an ONNX artifact reads its weights from (`model.onnx.data`)."""

    path: str = Field(description="Path relative to the package folder: the location the model names, as it names it.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex sha256 of the file's bytes.")
    size: int = Field(ge=0, description="Size in bytes (a truncated copy is told apart from a modified one).")

    _relative_inside = field_validator("path")(_inside)


class Artifact(_Strict):
    """One serialized form of the model, with the external-data files it reads (ONNX only)."""

    format: ArtifactFormat = Field(description="`onnx`, `torchscript` (.pt), `pt2` (torch.export), `openvino` "
                                   "(OpenVINO IR .xml; its .bin is a data file) or `executorch` (an ExecuTorch .pte "
                                   "program).")
    path: str = Field(description="Path relative to the package folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex sha256 of the file's bytes.")
    data_files: list[DataFile] | None = Field(
        None, description="External-data files of an ONNX model (an OpenVINO IR's .bin), each hashed; absent when "
        "the model has none.")

    _relative_inside = field_validator("path")(_inside)

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An artifact without data files dumps as it did before the field existed: the same manifest text
        # and the same `manifest.artifacts` cache-key component.
        data = handler(self)
        if data.get("data_files") is None:
            data.pop("data_files", None)
        return data

    def files(self) -> list[tuple[str, str]]:
        """(path, declared sha256) of every file the artifact is made of: the model file first."""
        return [(self.path, self.sha256), *((d.path, d.sha256) for d in self.data_files or [])]


Semantics = Literal["logits", "probabilities", "labels", "embedding", "raw", "regression", "other"]
# What prediction-level parity grades per meaning (`regression` and `other` are older names, graded as `raw`).
PREDICTION_SEMANTICS = ("logits", "probabilities", "labels", "embedding")


class TensorSpec(_Strict):
    """One input or output: a tensor (`dtype` + `shape`) or any contract type (`type`, see docs/contract.md).

    A tensor is written as `dtype` and `shape` (as every manifest always has); `type: tensor(float32)[batch,4]`
    is accepted and stored that way. Sequences, maps and optionals (`seq(map(int64,float32))`) keep `type`.
    """

    name: str
    type: str | None = Field(None, description="Type expression for non-tensors, e.g. `seq(map(int64,float32))`, "
                             "`optional(tensor(int64)[batch])`; a tensor may use dtype+shape instead.")
    dtype: str | None = Field(None, description="numpy dtype name of a tensor, e.g. `float32`, `int64`, `string`.")
    shape: list[Dim] | None = Field(None, description="Tensor dims; a string is symbolic (`batch`), an int fixed.")
    semantics: Semantics | None = Field(None, description="What an output means: logits, probabilities, labels, "
                                        "embedding, raw (prediction-level parity grades the first four).")

    @model_validator(mode="after")
    def _one_form(self) -> TensorSpec:
        if self.type is None:
            if self.dtype is None or self.shape is None:
                raise ValueError("give `dtype` and `shape` (a tensor), or `type` (e.g. seq(map(int64,float32)))")
            return self
        try:
            parsed = parse_type(self.type)
        except TypeSyntaxError as exc:
            raise ValueError(f"`type`: {exc}; see the grammar in docs/contract.md") from None
        if isinstance(parsed, TensorType) and parsed.shape is not None:
            if (self.dtype, self.shape) not in ((None, None), (parsed.dtype, list(parsed.shape))):
                raise ValueError(f"`type` {self.type!r} disagrees with dtype/shape: give one form only")
            # Stored as dtype+shape: tensors read the same however they were written.
            object.__setattr__(self, "dtype", parsed.dtype)
            object.__setattr__(self, "shape", list(parsed.shape))
            object.__setattr__(self, "type", None)
        elif self.dtype is not None or self.shape is not None:
            raise ValueError("a non-tensor `type` takes no dtype/shape (they describe tensors)")
        else:
            object.__setattr__(self, "type", str(parsed))  # normalized spelling
        return self

    @property
    def value_type(self) -> ValueType:
        """The parsed type: a TensorType for dtype+shape specs."""
        if self.type is None:
            assert self.dtype is not None and self.shape is not None
            return TensorType(self.dtype, tuple(self.shape))
        return parse_type(self.type)

    @property
    def is_tensor(self) -> bool:
        return isinstance(self.value_type, TensorType)

    def describe(self) -> str:
        """The spec in grammar form: `tensor(float32)[batch,4]`, `seq(map(int64,float32))`."""
        return str(self.value_type)


class Contract(_Strict):
    """The inference contract the serving side relies on."""

    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)


class PayloadSet(_Strict):
    """One more payload (e.g. another batch size) with its reference outputs."""

    payload: str = Field(description="Values `.npz` of inputs, keyed by input name (docs/contract.md).")
    reference: str | None = Field(None, description="Values `.npz` of the outputs expected on that payload.")

    @field_validator("payload", "reference")
    @classmethod
    def _relative_inside(cls, value: str | None) -> str | None:
        return None if value is None else _inside(value)


class Tolerance(_Strict):
    atol: float = Field(1e-5, ge=0)
    rtol: float = Field(1e-4, ge=0)


class Tolerances(Tolerance):
    per_output: dict[str, Tolerance] = Field(default_factory=dict, description="Overrides by output name.")

    def for_output(self, name: str) -> Tolerance:
        return self.per_output.get(name, Tolerance(atol=self.atol, rtol=self.rtol))


class Budgets(_Strict):
    p95_latency_ms: float | None = Field(None, gt=0)
    peak_memory_mb: float | None = Field(None, gt=0)
    # Edge budgets (ExecuTorch cells, checked by `edge_footprint`): what a device's flash and RAM must hold.
    max_program_bytes: int | None = Field(None, gt=0, description="Largest ExecuTorch program (.pte, as the cell "
                                          "runs it: lowered there, or the package's) in bytes.")
    max_rss_mb: float | None = Field(None, gt=0, description="Most resident memory, in MiB, that loading and "
                                     "running the program once adds to a fresh ExecuTorch runtime process.")


class Manifest(_Strict):
    """`modelcompat.yaml`."""

    schema_version: int = MANIFEST_SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: str
    artifacts: list[Artifact] = Field(min_length=1)
    contract: Contract
    payload: str = Field(description="Values `.npz` of representative inputs, keyed by input name.")
    reference: str | None = Field(None, description="Values `.npz` of reference outputs, keyed by output name.")
    payloads: list[PayloadSet] = Field(default_factory=list, description="More payloads (other batch or "
                                       "sequence sizes), each with its reference; checked like `payload`.")
    tolerances: Tolerances = Field(default_factory=Tolerances)
    requirements: list[str] = Field(default_factory=list, description="e.g. `onnxruntime>=1.17`.")
    budgets: Budgets = Field(default_factory=Budgets)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Validator parameters for this "
                                              "model, by validator name (e.g. `latency: {time_budget_s: 30}`): "
                                              "override the matrix's `params`; a run's own override these.")
    provenance: Provenance | None = Field(None, description="Licence (SPDX), source, training data, owner, "
                                          "intended use and the lineage of conversions (docs/governance.md).")

    @field_validator("payload", "reference")
    @classmethod
    def _relative_inside(cls, value: str | None) -> str | None:
        return None if value is None else _inside(value)

    def all_payloads(self) -> list[PayloadSet]:
        """`payload`/`reference` first, then `payloads`: every payload a check runs at."""
        return [PayloadSet(payload=self.payload, reference=self.reference), *self.payloads]


class ModelPackage:
    """A loaded package: its folder and manifest, with paths resolved and confined to the folder."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def resolve(self, relative: str) -> Path:
        """Absolute path of a package file; refuses anything that escapes the folder (symlinks too)."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ManifestError(
                f"path {relative!r} resolves outside the package folder",
                file=self.manifest_path,
                fix="keep every artifact, payload and reference file inside the package folder",
            )
        return path

    def artifact(self, fmt: ArtifactFormat) -> Artifact | None:
        """The package's artifact in format `fmt`, if it has one."""
        return next((a for a in self.manifest.artifacts if a.format == fmt), None)

    @property
    def primary_sha256(self) -> str:
        """Hash that identifies the model version: the first artifact's."""
        return self.manifest.artifacts[0].sha256


def load_package(root: str | Path) -> ModelPackage:
    """Read and validate a package folder.

    Raises:
        ManifestError: missing folder/manifest, bad YAML, missing or wrongly typed fields, a file
            named by the manifest that is missing or outside the folder.
    """
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise ManifestError("model package folder not found", file=root,
                            fix="pass a folder made by `modelcompat package` or `modelcompat demo`")
    if not manifest_path.is_file():
        raise ManifestError(f"no {MANIFEST_NAME} in the package folder", file=root,
                            fix="create the package with `modelcompat package MODEL_FILE --payload INPUTS.npz ...`")
    data, lines = strip_lines(load_yaml_mapping(manifest_path, ManifestError))
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error_to_input_error(exc, manifest_path, ManifestError, lines) from None
    package = ModelPackage(root, manifest)
    named = [("payload", manifest.payload)] + ([("reference", manifest.reference)] if manifest.reference else [])
    for i, extra in enumerate(manifest.payloads):
        named += [(f"payloads[{i}].payload", extra.payload)]
        named += [(f"payloads[{i}].reference", extra.reference)] if extra.reference else []
    named += [(f"artifacts[{i}].path", a.path) for i, a in enumerate(manifest.artifacts)]
    for field, rel in named:
        if not package.resolve(rel).is_file():
            raise ManifestError(f"file {rel!r} does not exist", file=manifest_path, field=field,
                                fix="fix the path or restore the file")
    return package


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write `modelcompat.yaml` (sorted as declared, no Python tags)."""
    path = root / MANIFEST_NAME
    data = manifest.model_dump(mode="json", exclude_none=True)
    if not data.get("payloads"):
        data.pop("payloads", None)  # a one-payload manifest reads as it always did
    if not data.get("params"):
        data.pop("params", None)  # likewise a manifest without validator params
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
