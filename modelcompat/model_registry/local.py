"""The local file model registry: versions, aliases and verdicts, with a Prefect event per registration.

Layout under `$MODELCOMPAT_REGISTRY` (default `$MODELCOMPAT_HOME/registry`): one JSON file per model,
`<name>.json` = {versions: {version: {...}}, aliases: {alias: version}}, replaced atomically under a
file lock so concurrent writers (a registration and a verdict write-back) never lose each other's change.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from modelcompat import settings
from modelcompat.errors import InputError
from modelcompat.files.atomic import write_text
from modelcompat.model.package import load_package

EVENT_REGISTERED = "model.version.registered"
EVENT_ALIAS_SET = "model.version.alias_set"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class LocalRegistry:
    """A folder of `<model>.json` files."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else settings.registry_dir()

    def _path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def _read(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(self._path(name).read_text())
        except FileNotFoundError:
            return {"name": name, "versions": {}, "aliases": {}}

    @contextmanager
    def _edit(self, name: str) -> Iterator[dict[str, Any]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / f".{name}.lock"), timeout=60):
            data = self._read(name)
            yield data
            # The registry is the source of truth: durable, and private to its owner as before (0600).
            write_text(self._path(name), json.dumps(data, indent=2, sort_keys=True), perm=0o600)

    def models(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []

    def model(self, name: str) -> dict[str, Any]:
        data = self._read(name)
        if not data["versions"]:
            raise InputError(f"model {name!r} is not registered", field="model",
                             fix=f"register it with `modelcompat registry register PACKAGE_DIR` "
                                 f"(registered: {', '.join(self.models()) or 'none'})")
        return data

    def version(self, name: str, version: str) -> dict[str, Any]:
        data = self.model(name)
        version = data["aliases"].get(version, version)  # an alias resolves to its version
        if version not in data["versions"]:
            raise InputError(f"model {name!r} has no version {version!r}", field="version",
                             fix=f"choose one of: {', '.join(data['versions'])}")
        return {"name": name, "version": version, **data["versions"][version]}

    def latest(self, name: str) -> str:
        """The most recently registered version."""
        versions = self.model(name)["versions"]
        return max(versions, key=lambda v: versions[v]["registered_at"])

    def register(self, package_dir: str | Path) -> dict[str, Any]:
        """Record a package folder as a model version (the package must load)."""
        package = load_package(package_dir)
        name, version = package.manifest.name, package.manifest.version
        entry = {"package": str(Path(package_dir).resolve()), "sha256": package.primary_sha256,
                 "registered_at": _now(), "verdict": None, "run_id": None}
        with self._edit(name) as data:
            data["versions"][version] = entry
        return {"name": name, "version": version, **entry}

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with self._edit(name) as data:
            if version not in data["versions"]:
                raise InputError(f"model {name!r} has no version {version!r}", field="version",
                                 fix=f"choose one of: {', '.join(data['versions']) or 'none registered'}")
            data["aliases"][alias] = version

    def record_verdict(self, name: str, version: str, *, verdict: str, run_id: str, report: str | None = None) -> None:
        """Write the check's verdict back beside the version."""
        with self._edit(name) as data:
            entry = data["versions"].setdefault(version, {})
            entry.update({"verdict": verdict, "run_id": run_id, "checked_at": _now(), "report": report})


def model_resource(name: str, version: str, package: str | None = None) -> dict[str, str]:
    """The Prefect event resource for a model version (labels the triggers template from)."""
    resource = {"prefect.resource.id": f"modelcompat.model.{name}.{version}",
                "modelcompat.model.name": name, "modelcompat.model.version": version}
    if package:
        resource["modelcompat.package"] = package
    return resource


def emit_registered(name: str, version: str, package: str | None = None) -> None:
    """Tell Prefect a version was registered (the `on-model-registered` deployment listens for it)."""
    from prefect.events import emit_event

    emit_event(event=EVENT_REGISTERED, resource=model_resource(name, version, package))


def emit_alias_set(name: str, alias: str, version: str) -> None:
    from prefect.events import emit_event

    emit_event(event=EVENT_ALIAS_SET, resource=model_resource(name, version),
               payload={"alias": alias})
