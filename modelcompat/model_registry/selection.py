"""Which model registry the flows talk to, chosen by `MODELCOMPAT_REGISTRY`.

- `mlflow+http://HOST:PORT` or `mlflow+https://HOST[/path]`: the MLflow model registry at that tracking URI
  (`modelcompat.model_registry.mlflow.MlflowRegistry`);
- anything else (or unset): the local folder registry (`modelcompat.model_registry.local.LocalRegistry`).

Both offer what the flows need: `version(name, version_or_alias) -> {"package", "version", …}`,
`latest(name) -> version`, `record_verdict(name, version, *, verdict, run_id, report)`; and `models()`,
`model(name)` (with its `aliases`) for the nightly matrix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from modelcompat import settings
from modelcompat.model_registry.local import LocalRegistry
from modelcompat.model_registry.mlflow import MlflowRegistry, is_mlflow_uri


class ModelRegistry(Protocol):
    def version(self, name: str, version: str) -> dict[str, Any]: ...

    def latest(self, name: str) -> str: ...

    def record_verdict(self, name: str, version: str, *, verdict: str, run_id: str,
                       report: str | None = None) -> None: ...


def open_registry(uri: str | Path | None = None) -> LocalRegistry | MlflowRegistry:
    """The registry `uri` names (default `$MODELCOMPAT_REGISTRY`): MLflow for `mlflow+http(s)://…`, else a folder."""
    value = str(uri) if uri is not None else settings.registry_uri()
    if is_mlflow_uri(value):
        return MlflowRegistry.from_uri(value)  # type: ignore[arg-type]
    return LocalRegistry(value or None)
