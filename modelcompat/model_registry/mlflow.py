"""The MLflow model registry adapter: resolve a model version to its package, write the verdict back as tags.

Talks to the tracking server's REST API with `httpx` (no `mlflow` import: mlflow's pins clash with prefect's;
the REST API is stable). Selected by `MODELCOMPAT_REGISTRY=mlflow+http://HOST:PORT` (or `mlflow+https://…`):
the tracking URI is what follows `mlflow+`. Authentication as MLflow's own client reads it:
`MLFLOW_TRACKING_TOKEN` (bearer) or `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` (basic).

Where a version's package is: its `modelcompat.package` tag when set, else the version's `source` when that is
a local path (or `file://` URI) to a modelcompat package folder (a folder holding `modelcompat.yaml`).

The verdict goes back as tags on the model version: `modelcompat.verdict`, `modelcompat.run_id`,
`modelcompat.report` (the command that renders the run's report, or a link) and `modelcompat.checked_at`.
"""
from __future__ import annotations

import os
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from modelcompat.errors import InputError, ModelcompatError
from modelcompat.model.package import MANIFEST_NAME

SCHEMES = ("mlflow+http://", "mlflow+https://")
TAG_PACKAGE = "modelcompat.package"
TAG_VERDICT = "modelcompat.verdict"
TAG_RUN_ID = "modelcompat.run_id"
TAG_REPORT = "modelcompat.report"
TAG_CHECKED_AT = "modelcompat.checked_at"
_API = "/api/2.0/mlflow"


class MlflowRegistryError(ModelcompatError):
    """The MLflow tracking server could not be reached or answered with an unexpected error."""


def is_mlflow_uri(uri: str | None) -> bool:
    return bool(uri) and uri.startswith(SCHEMES)  # type: ignore[union-attr]


def tracking_uri_of(registry_uri: str) -> str:
    """`mlflow+https://host/path` -> `https://host/path`."""
    if not is_mlflow_uri(registry_uri):
        raise InputError(f"{registry_uri!r} is not an MLflow registry URI", field="MODELCOMPAT_REGISTRY",
                         fix="use mlflow+http://HOST:PORT or mlflow+https://HOST")
    return registry_uri[len("mlflow+"):].rstrip("/")


def _local_path(source: str | None) -> Path | None:
    """A local filesystem path from a `source` (plain absolute path or `file://` URI), else None."""
    if not source:
        return None
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme == "" and source.startswith("/"):
        return Path(source)
    return None


def _package_folder(location: str | None) -> Path | None:
    path = _local_path(location)
    return path if path is not None and (path / MANIFEST_NAME).is_file() else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class MlflowRegistry:
    """An MLflow tracking server's model registry, seen through the interface the flows use.

    `version(name, version_or_alias)`, `latest(name)`, `record_verdict(...)`; plus `models()`, `model(name)`
    and `set_alias(...)` for the nightly flow and for tests.
    """

    def __init__(self, tracking_uri: str, *, timeout: float = 30.0, client: httpx.Client | None = None) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        headers = {}
        auth: httpx.Auth | None = None
        if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {token}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = httpx.BasicAuth(os.environ["MLFLOW_TRACKING_USERNAME"],
                                   os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        self._client = client or httpx.Client(base_url=self.tracking_uri, headers=headers, auth=auth,
                                              timeout=timeout)

    @classmethod
    def from_uri(cls, registry_uri: str) -> MlflowRegistry:
        """From `mlflow+http(s)://…` (the `MODELCOMPAT_REGISTRY` form)."""
        return cls(tracking_uri_of(registry_uri))

    def __repr__(self) -> str:
        return f"MlflowRegistry({self.tracking_uri!r})"

    # -- REST -----------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            resp = self._client.request(method, _API + path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise MlflowRegistryError(
                f"MLflow tracking server {self.tracking_uri} unreachable ({type(exc).__name__}: {exc}); "
                "check MODELCOMPAT_REGISTRY and that the server is running") from exc
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            data = {}
        if resp.status_code == 200:
            return data
        code = data.get("error_code", "") if isinstance(data, dict) else ""
        message = data.get("message", resp.text[:300]) if isinstance(data, dict) else resp.text[:300]
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or resp.status_code == 404:
            raise InputError(f"MLflow registry {self.tracking_uri}: {message}", field="model",
                             fix="check the registered model name and version (or alias) in MLflow")
        raise MlflowRegistryError(f"MLflow {method} {path} answered {resp.status_code} {code}: {message}")

    def _model_version(self, name: str, version: str) -> dict[str, Any]:
        """The raw model version; `version` may be a version number or an alias."""
        if version.isdigit():
            return self._call("GET", "/model-versions/get", params={"name": name, "version": version})["model_version"]
        return self._call("GET", "/registered-models/alias", params={"name": name, "alias": version})["model_version"]

    # -- the interface the flows use ------------------------------------------------------------------------
    def version(self, name: str, version: str) -> dict[str, Any]:
        """{"name", "version", "package", "source", "tags", "verdict", "run_id"} of a version or alias."""
        mv = self._model_version(name, str(version))
        tags = {t["key"]: t.get("value", "") for t in mv.get("tags", [])}
        package = _package_folder(tags.get(TAG_PACKAGE)) or _package_folder(mv.get("source"))
        if package is None:
            raise InputError(
                f"MLflow model {name!r} version {mv['version']}: no modelcompat package folder found "
                f"(source {mv.get('source')!r}, tag {TAG_PACKAGE}={tags.get(TAG_PACKAGE)!r})", field="package",
                fix=f"set the tag {TAG_PACKAGE} on the model version to the package folder (a folder holding "
                    f"{MANIFEST_NAME}, reachable where the checks run), or register the version with that "
                    "folder as its source")
        return {"name": name, "version": str(mv["version"]), "package": str(package), "source": mv.get("source"),
                "tags": tags, "verdict": tags.get(TAG_VERDICT), "run_id": tags.get(TAG_RUN_ID)}

    def latest(self, name: str) -> str:
        """The highest version number of a registered model."""
        versions = self._versions(name)
        if not versions:
            raise InputError(f"MLflow model {name!r} has no versions", field="model",
                             fix="register a model version in MLflow first")
        return str(max(int(v["version"]) for v in versions))

    def record_verdict(self, name: str, version: str, *, verdict: str, run_id: str, report: str | None = None) -> None:
        """Write the verdict back as tags on the model version, the verdict tag last.

        MLflow sets one tag per call, so a reader polling the version can see some tags before the others;
        the verdict is what gates and tests wait on, so it goes last: whoever sees the new verdict also sees
        the run id and report command that belong to it.
        """
        tags = {TAG_RUN_ID: run_id, TAG_CHECKED_AT: _now()}
        if report:
            tags[TAG_REPORT] = report
        tags[TAG_VERDICT] = verdict
        for key, value in tags.items():
            self._call("POST", "/model-versions/set-tag",
                       body={"name": name, "version": str(version), "key": key, "value": value})

    # -- the rest (nightly flow, tests) ----------------------------------------------------------------------
    def _versions(self, name: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = None
        escaped = name.replace("'", "\\'")
        while True:
            params = {"filter": f"name='{escaped}'", "max_results": 1000, **({"page_token": token} if token else {})}
            data = self._call("GET", "/model-versions/search", params=params)
            out.extend(data.get("model_versions", []))
            token = data.get("next_page_token")
            if not token:
                return out

    def models(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            data = self._call("GET", "/registered-models/search",
                              params={"max_results": 1000, **({"page_token": token} if token else {})})
            names.extend(m["name"] for m in data.get("registered_models", []))
            token = data.get("next_page_token")
            if not token:
                return sorted(names)

    def model(self, name: str) -> dict[str, Any]:
        """{"name", "versions": {version: {"source", "tags"}}, "aliases": {alias: version}} (LocalRegistry's shape)."""
        rm = self._call("GET", "/registered-models/get", params={"name": name})["registered_model"]
        versions = {str(v["version"]): {"source": v.get("source"),
                                        "tags": {t["key"]: t.get("value", "") for t in v.get("tags", [])}}
                    for v in self._versions(name)}
        return {"name": name, "versions": versions,
                "aliases": {a["alias"]: str(a["version"]) for a in rm.get("aliases", [])}}

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call("POST", "/registered-models/alias", body={"name": name, "alias": alias, "version": str(version)})
