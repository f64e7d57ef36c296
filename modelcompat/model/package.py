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
)

from modelcompat.errors import ManifestError
from modelcompat.files.yaml_reader import (
    load_yaml_mapping,
    pydantic_error_to_input_error,
    strip_lines,
)
from modelcompat.matrix.cells import ArtifactFormat

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

    format: ArtifactFormat = Field(description="`onnx`, `torchscript` (.pt) or `pt2` (torch.export).")
    path: str = Field(description="Path relative to the package folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex sha256 of the file's bytes.")
    data_files: list[DataFile] | None = Field(
        None, description="External-data files of an ONNX model, each hashed; absent when the model has none.")

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


class TensorSpec(_Strict):
    """Name, dtype and shape (symbolic dims as strings) of one input or output."""

    name: str
    dtype: str = Field(description="numpy dtype name, e.g. `float32`, `int64`.")
    shape: list[Dim] = Field(description="Dims; a string is symbolic (`batch`), an int fixed.")
    semantics: Literal["logits", "probabilities", "embedding", "regression", "other"] | None = None


class Contract(_Strict):
    """The inference contract the serving side relies on."""

    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)


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


class Manifest(_Strict):
    """`modelcompat.yaml`."""

    schema_version: int = MANIFEST_SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: str
    artifacts: list[Artifact] = Field(min_length=1)
    contract: Contract
    payload: str = Field(description="`.npz` of representative inputs, keyed by input name.")
    reference: str | None = Field(None, description="`.npz` of reference outputs, keyed by output name.")
    tolerances: Tolerances = Field(default_factory=Tolerances)
    requirements: list[str] = Field(default_factory=list, description="e.g. `onnxruntime>=1.17`.")
    budgets: Budgets = Field(default_factory=Budgets)

    @field_validator("payload", "reference")
    @classmethod
    def _relative_inside(cls, value: str | None) -> str | None:
        if value is not None:
            p = Path(value)
            if p.is_absolute() or ".." in p.parts:
                raise ValueError("must be a path inside the package folder (no absolute path, no '..')")
        return value


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
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
