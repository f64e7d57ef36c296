"""A run as a CycloneDX 1.6 ML-BOM (JSON, with cyclonedx-python-lib): the model and every file it is made of, with
hashes and what the files say about themselves, and each cell's runtime environment with every installed package.

The model is the BOM's subject (`machine-learning-model`), with the manifest's provenance: its SPDX licence, its
source repository (a `vcs` reference, the commit in its comment), owner, intended use and lineage steps as
properties, and each training data set a `data` component it depends on. Each artifact file and external-data file
is a `file` component with its SHA-256 and what the file says of itself (ONNX producer/IR/opsets, the torch that
saved a .pt2, a TorchScript file format); each cell that ran is a `platform` component (its runtime spec, hardware
and backend as properties) holding one `library` component per installed distribution (`pkg:pypi/...` purl). The
model depends on its files; each cell depends on the model, so "what runs this model" reads off the graph.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from modelcompat import __version__
from modelcompat.matrix.cells import Cell
from modelcompat.model.package import ModelPackage
from modelcompat.model.provenance import Provenance, read_facts
from modelcompat.store import RunRecord

SCHEMA = SchemaVersion.V1_6
_PREFIX = "modelcompat:"


def _props(values: dict[str, Any]) -> list[Property]:
    return [Property(name=_PREFIX + k, value=str(v)) for k, v in values.items() if v not in (None, "", [], {})]


def _ref(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def onnx_facts(path: str) -> dict[str, Any]:
    """What an ONNX file says about itself (no weights loaded): producer, IR version, opsets per domain."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return {"producer_name": model.producer_name, "producer_version": model.producer_version,
            "ir_version": model.ir_version,
            "opsets": ",".join(f"{o.domain or 'ai.onnx'}={o.version}" for o in model.opset_import)}


def _torch_facts(path: str, fmt: str) -> dict[str, Any]:
    """What a .pt2 or TorchScript archive says of the torch that saved it, read from the zip (never unpickled)."""
    facts = read_facts(Path(path), fmt)
    return {"torch_version": facts.torch_version, "export_schema_version": facts.schema_version,
            "torchscript_file_format_version": facts.file_format_version}


def _artifact_components(package: ModelPackage) -> list[Component]:
    components = []
    for artifact in package.manifest.artifacts:
        where = str(package.resolve(artifact.path))
        facts = (onnx_facts(where) if artifact.format == "onnx" else
                 _torch_facts(where, artifact.format) if artifact.format in ("pt2", "torchscript") else {})
        for index, (path, sha256) in enumerate(artifact.files()):
            role = "model" if index == 0 else "external-data"
            components.append(Component(
                name=path, type=ComponentType.FILE, bom_ref=_ref("file", path, sha256),
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256)],
                properties=_props({"format": artifact.format, "role": role, **(facts if index == 0 else {})})))
    return components


def _environment_component(cell: Cell, packages: dict[str, str], runtime_version: str | None) -> Component:
    env = Component(
        name=cell.id, type=ComponentType.PLATFORM, bom_ref=_ref("cell", cell.id),
        description=f"the runtime environment of cell {cell.id}",
        properties=_props({"runtime": cell.runtime.id, "runtime.kind": cell.runtime.kind, "runtime.env": cell.runtime.env,
                           "runtime.requirements": ", ".join(cell.runtime.requirements or []),
                           "runtime.version": runtime_version, "hardware": cell.hardware.id, "backend": cell.backend.id,
                           "backend.provider": getattr(cell.backend, "provider", None),
                           "backend.precision": getattr(cell.backend, "precision", None)}))
    for name, version in packages.items():
        env.components.add(Component(
            name=name, version=version, type=ComponentType.LIBRARY, bom_ref=_ref("pkg", cell.id, name, version),
            purl=PackageURL(type="pypi", name=name.lower(), version=version)))
    return env


def _provenance_fields(provenance: Provenance | None) -> tuple[dict[str, Any], dict[str, Any], list[Component]]:
    """Component keyword arguments (licence, vcs reference), properties, and training data components."""
    if provenance is None:
        return {}, {}, []
    kwargs: dict[str, Any] = {}
    if provenance.licence:
        kwargs["licenses"] = [LicenseExpression(provenance.licence)]
    source = provenance.source
    if source and source.repo:
        kwargs["external_references"] = [ExternalReference(
            type=ExternalReferenceType.VCS, url=XsUri(source.repo),
            comment=" ".join(filter(None, [source.commit and f"commit {source.commit}", source.path])) or None)]
    props: dict[str, Any] = {"owner": provenance.owner, "intended_use": provenance.intended_use,
                             "source.commit": source.commit if source else None,
                             **{f"lineage.{i}": " ".join(filter(None, [s.step, s.tool, s.version, s.artifact and
                                                                      f"-> {s.artifact}"]))
                                for i, s in enumerate(provenance.lineage)}}
    data = [Component(name=d.name, version=d.version, type=ComponentType.DATA,
                      bom_ref=_ref("data", d.name, d.version or ""),
                      external_references=[ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(d.uri))]
                      if d.uri else None,
                      description="training data (declared in the manifest)") for d in provenance.training_data]
    return kwargs, props, data


def build_sbom(record: RunRecord, package: ModelPackage,
               environments: Iterable[tuple[Cell, dict[str, str], str | None]]) -> str:
    """The BOM as CycloneDX 1.6 JSON, validated against the schema before it is returned."""
    manifest = package.manifest
    declared, provenance_props, training_data = _provenance_fields(manifest.provenance)
    model = Component(
        name=manifest.name, version=manifest.version, type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=_ref("model", manifest.name, manifest.version, record.model_sha256),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=record.model_sha256)],
        properties=_props({"run_id": record.run_id, "verdict": record.verdict, "matrix": record.matrix,
                           "checked_at": record.finished_at.isoformat() if record.finished_at else None,
                           "formats": ",".join(a.format for a in manifest.artifacts), **provenance_props}),
        **declared)
    bom = Bom()
    bom.metadata.component = model
    bom.metadata.properties.update(_props({"generated_by": f"modelcompat {__version__}"}))
    files = _artifact_components(package)
    for component in files:
        bom.components.add(component)
    for component in training_data:
        bom.components.add(component)
    bom.register_dependency(model, [*files, *training_data])
    for cell, packages, runtime_version in environments:
        env = _environment_component(cell, packages, runtime_version)
        bom.components.add(env)
        bom.register_dependency(env, [model])
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    problem = JsonStrictValidator(SCHEMA).validate_str(text)
    if problem is not None:  # a bug here, never the user's input: say what the schema refused
        raise ValueError(f"the SBOM does not validate against CycloneDX {SCHEMA.to_version()}: {problem}")
    return text
