"""Provenance of a model: what the manifest declares (licence, source, training data, owner, intended use, the
lineage of conversions) and what each artifact says of itself, read statically (never loaded or unpickled)."""
from __future__ import annotations

import difflib
import functools
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from modelcompat.model.package import ModelPackage

SPDX_LIST = "https://spdx.org/licenses/"
# SPDX lets a document name a licence outside the list as `LicenseRef-<idstring>` (SPDX 2.3, annex D).
_LICENSE_REF = re.compile(r"(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+")
_MAX_JSON_BYTES = 256 << 20  # a torch.export program larger than this is not read for its version (zip bombs)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@functools.cache
def _spdx() -> Any:
    # The SPDX licence list license-expression bundles (a dependency of cyclonedx-python-lib): offline, versioned.
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def spdx_expression(text: str) -> str:
    """`text` as a valid SPDX licence expression in its canonical spelling (`apache-2.0` -> `Apache-2.0`).

    Raises:
        ValueError: not a valid expression, or an id that is neither on the SPDX list nor a `LicenseRef-`;
            the message names the id and the closest SPDX ids.
    """
    if not text.strip():
        raise ValueError("the licence is empty: give an SPDX licence id, or leave the field out")
    try:
        info = _spdx().validate(text.strip())
    except Exception:  # noqa: BLE001 - the library raises on some syntax errors rather than report them
        raise ValueError(f"{text!r} is not a valid SPDX licence expression") from None
    unknown = [s for s in info.invalid_symbols if str(s).strip() and not _LICENSE_REF.fullmatch(str(s))]
    refs = [s for s in info.invalid_symbols if _LICENSE_REF.fullmatch(str(s))]
    if info.errors and not unknown and not refs:  # a syntax error: `MIT OR`, unbalanced parentheses
        raise ValueError(f"{text!r} is not a valid SPDX licence expression ({'; '.join(info.errors)})")
    if unknown:
        guesses = _close_ids(str(unknown[0]))
        hint = f"; did you mean {', '.join(guesses)}?" if guesses else ""
        raise ValueError(f"{', '.join(repr(str(s)) for s in unknown)} is not an SPDX licence id{hint}")
    if info.invalid_symbols:  # only LicenseRef-s, which SPDX allows: canonical spelling of the rest, token by token
        canonical = _canonical_ids()
        return re.sub(r"[A-Za-z0-9.+:-]+", lambda m: canonical.get(m.group().lower(), m.group()), text.strip())
    return str(info.normalized_expression)


def _close_ids(unknown: str) -> list[str]:
    """Up to three SPDX ids a mistyped one probably meant: `GPL2` -> GPL-2.0-only, …; `Apache 2.0` -> Apache-2.0."""
    keys = sorted((str(k) for k in _spdx().known_symbols if not str(k).startswith("LicenseRef-")), key=len)
    match = re.match(r"([A-Za-z]+)[\s_-]*v?(\d*)", unknown)
    if match:  # same family name, same major version
        family, major = match.group(1).lower(), match.group(2)
        same = [k for k in keys
                if k.lower().startswith(family + "-") and (not major or k[len(family) + 1:].startswith(major))]
        if same:
            return same[:3]
    return difflib.get_close_matches(unknown.replace(" ", "-"), keys, n=3, cutoff=0.6)


@functools.cache
def _canonical_ids() -> dict[str, str]:
    ids = {str(k).lower(): str(k) for k in _spdx().known_symbols}
    return {**ids, "and": "AND", "or": "OR", "with": "WITH"}


class Source(_Strict):
    """Where the model's code and weights come from."""

    repo: str | None = Field(None, description="Repository URL, e.g. `https://github.com/org/model`.")
    commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,64}$", description="The commit the artifacts were "
                               "exported from (hex, 7-64 characters).")
    path: str | None = Field(None, description="The training or export script within the repository.")


class TrainingData(_Strict):
    """A data set the model was trained or fine-tuned on."""

    name: str
    uri: str | None = Field(None, description="Where it is (URL, DOI, a data catalogue id).")
    version: str | None = Field(None, description="Its version, snapshot date or content hash.")


class ConversionStep(_Strict):
    """One step of the artifact's lineage: export, quantize, fp16, optimize, opset conversion …"""

    step: str = Field(description="What was done, e.g. `export`, `quantize`, `fp16`, `optimize`.")
    tool: str = Field(description="The tool that did it, e.g. `torch`, `onnxruntime`, `onnxconverter-common`.")
    version: str | None = Field(None, description="The tool's version, e.g. `2.13.0`.")
    artifact: str | None = Field(None, description="The artifact (package-relative path) the step produced.")
    note: str | None = None


class Provenance(_Strict):
    """`provenance:` in `modelcompat.yaml`: every field optional (docs/governance.md)."""

    licence: str | None = Field(None, validation_alias=AliasChoices("licence", "license"),
                                description="SPDX licence expression, e.g. `Apache-2.0`, `MIT OR Apache-2.0`, or "
                                f"`LicenseRef-<name>` for one outside the SPDX list ({SPDX_LIST}).")
    source: Source | None = None
    training_data: list[TrainingData] = Field(default_factory=list)
    owner: str | None = Field(None, description="Who answers for the model (team, person, e-mail).")
    intended_use: str | None = Field(None, description="What it is for, and what it is not for.")
    lineage: list[ConversionStep] = Field(default_factory=list, description="The conversions from the trained "
                                          "model to the artifacts, in order.")

    @field_validator("licence")
    @classmethod
    def _spdx_licence(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return spdx_expression(value)
        except ValueError as exc:
            raise PydanticCustomError("spdx_licence", str(exc), {
                "fix": f"write an SPDX licence id from {SPDX_LIST} (e.g. Apache-2.0, MIT, CC-BY-4.0), an "
                       "expression of them (MIT OR Apache-2.0), or LicenseRef-<name> for a licence outside the list"
            }) from None

    def is_empty(self) -> bool:
        return self == Provenance()


class ArtifactFacts(BaseModel):
    """What an artifact file says of itself: the tool that wrote it and the format versions it uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    format: str
    producer_name: str | None = Field(None, description="ONNX `producer_name` (e.g. `pytorch`, `onnxruntime.quant`).")
    producer_version: str | None = None
    ir_version: int | None = None
    opsets: dict[str, int] = Field(default_factory=dict, description="ONNX opset per domain (`ai.onnx` for '').")
    torch_version: str | None = Field(None, description="The torch that saved a .pt2 (torch.export) archive.")
    schema_version: str | None = Field(None, description="The torch.export serialization schema (`major.minor`).")
    file_format_version: int | None = Field(None, description="A TorchScript archive's file format version "
                                            "(TorchScript does not record the torch that saved it).")
    error: str | None = Field(None, description="Why nothing could be read, when the file is unreadable.")

    def saved_by(self) -> str | None:
        """`torch 2.13.0`, `pytorch 2.13.0` (ONNX producer): who wrote the file, when it says."""
        if self.torch_version:
            return f"torch {self.torch_version}"
        if self.producer_name:
            return f"{self.producer_name} {self.producer_version}".strip()
        if self.file_format_version is not None:
            return f"TorchScript file format {self.file_format_version}"
        return None


def _onnx_facts(path: Path) -> dict[str, Any]:
    import onnx  # deferred: ~0.3 s

    model = onnx.load(str(path), load_external_data=False)  # the graph only, never the weights
    return {"producer_name": model.producer_name or None, "producer_version": model.producer_version or None,
            "ir_version": model.ir_version,
            "opsets": {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}}


def _pt2_facts(zf: zipfile.ZipFile) -> dict[str, Any]:
    from modelcompat.model.inspect import _pt2_program_member  # the one place that knows both archive layouts

    member = _pt2_program_member(zf.namelist())
    if member is None or zf.getinfo(member).file_size > _MAX_JSON_BYTES:
        return {}
    program = json.loads(zf.read(member))
    schema = program.get("schema_version") or {}
    return {"torch_version": program.get("torch_version"),
            "schema_version": f"{schema['major']}.{schema['minor']}" if "major" in schema else None}


def _torchscript_facts(zf: zipfile.ZipFile) -> dict[str, Any]:
    member = next((n for n in zf.namelist() if re.fullmatch(r"[^/]+/version", n)), None)
    if member is None or zf.getinfo(member).file_size > 64:
        return {}
    text = zf.read(member).decode("ascii", "replace").strip()
    return {"file_format_version": int(text)} if text.isdigit() else {}


def read_facts(path: Path, fmt: str, label: str | None = None) -> ArtifactFacts:
    """What the artifact at `path` says of itself; an unreadable file gives facts with `error` (never raises:
    loadability and integrity report unreadable artifacts)."""
    facts: dict[str, Any] = {}
    error = None
    try:
        if fmt == "onnx":
            facts = _onnx_facts(path)
        elif fmt in ("pt2", "torchscript"):
            with zipfile.ZipFile(path) as zf:
                facts = _pt2_facts(zf) if fmt == "pt2" else _torchscript_facts(zf)
    except Exception as exc:  # noqa: BLE001 - a damaged file is another validator's finding, not a crash here
        error = f"{type(exc).__name__}: {exc}"[:300]
    return ArtifactFacts(path=label or path.name, format=fmt, error=error, **facts)


class ModelProvenance(BaseModel):
    """A package's provenance: the manifest's declaration and each artifact's own facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declared: Provenance = Field(default_factory=Provenance)
    artifacts: list[ArtifactFacts] = Field(default_factory=list)


def package_provenance(package: ModelPackage) -> ModelProvenance:
    """Read the package's declared provenance and every artifact's facts."""
    manifest = package.manifest
    return ModelProvenance(
        declared=manifest.provenance or Provenance(),
        artifacts=[read_facts(package.resolve(a.path), a.format, a.path) for a in manifest.artifacts])


def release(version: str | None) -> tuple[int, ...] | None:
    """`2.13.0+cpu` -> (2, 13, 0); None when it does not start with a release number."""
    match = re.match(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", version or "")
    return tuple(int(g or 0) for g in match.groups()) if match else None
