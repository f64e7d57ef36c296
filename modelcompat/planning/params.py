"""A run's validator parameters: the matrix's `params`, then the package manifest's, then the run's own (later
wins, key by key), each checked against its validator's `Params` with the file and field named."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelcompat.errors import InputError, ManifestError, MatrixError
from modelcompat.matrix.spec import Matrix
from modelcompat.model.package import MANIFEST_NAME, ModelPackage
from modelcompat.validators.registry import Registry

Params = dict[str, dict[str, Any]]


def resolve_params(matrix: Matrix, package: ModelPackage, run_params: Params | None, registry: Registry) -> Params:
    """Merged parameters by validator name; InputError (MatrixError, ManifestError) on an unknown validator in
    a file or a value its Params refuses. A run's params for a validator not installed here are ignored, as
    they always were (a deployment's form may name a plugin this worker lacks)."""
    sources: list[tuple[Params, Path | None, type[InputError]]] = [
        (matrix.spec.params, matrix.path, MatrixError),
        (package.manifest.params, Path(package.root) / MANIFEST_NAME, ManifestError),
        (run_params or {}, None, InputError),
    ]
    merged: Params = {}
    for params, file, error in sources:
        for name, values in params.items():
            if name not in registry.validators:
                if file is None:
                    continue
                raise error(f"no validator named {name!r}", file=file, field=f"params.{name}",
                            fix=f"use one of: {', '.join(sorted(registry.validators))}")
            _check(registry, name, values, file, error)
            merged[name] = {**merged.get(name, {}), **values}
    for name, values in merged.items():  # each source was valid alone; the merge must be too
        _check(registry, name, values, None, InputError)
    return merged


def _check(registry: Registry, name: str, values: dict[str, Any], file: Path | None, error: type[InputError]) -> None:
    params_model = registry.validators[name].Params
    try:
        params_model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        allowed = ", ".join(params_model.model_fields)
        raise error(first["msg"], file=file, field=".".join(["params", name, *map(str, first["loc"])]),
                    fix=f"{name} takes: {allowed or 'no parameters'} (`modelcompat validators` describes them)") from None
