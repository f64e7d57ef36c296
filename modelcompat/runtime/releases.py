"""The releases of a runtime package on the package index this machine is configured with.

Asked through the PEP 691 JSON simple API of the primary index (`UV_DEFAULT_INDEX`, `UV_INDEX_URL`,
`PIP_INDEX_URL`, a pip.conf `index-url`, else https://pypi.org/simple). A release counts when it is final
(no pre-, dev- or post-only ambiguity: `Version.is_prerelease` false), not yanked, and has a wheel this
interpreter can install (`packaging.tags.sys_tags()`, `requires-python`). The list is cached in
`<env cache>/releases/<project>-<key>.json` for `MODELCOMPAT_RESOLVE_TTL_S` seconds, as floating runtimes'
resolutions are; when it is stale and the index cannot be reached, the last list is used with a warning.
"""
from __future__ import annotations

import configparser
import hashlib
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from modelcompat import settings
from modelcompat.errors import ModelcompatError
from modelcompat.files.atomic import write_text

DEFAULT_INDEX = "https://pypi.org/simple"
RELEASES_DIR = "releases"
_JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)


class ReleaseIndexError(ModelcompatError):
    """The package index could not be read and no earlier list of releases is cached (CLI exit 3)."""


@dataclass(frozen=True)
class ReleaseList:
    """A project's installable final releases, oldest first, as the index listed them at `fetched_at`."""

    project: str
    index_url: str
    versions: tuple[str, ...]
    fetched_at: float


def index_url() -> str:
    """The primary index uv/pip would use here: uv's variables, pip's variable, pip.conf, else PyPI."""
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value.split()[0].rstrip("/")
    for path in _pip_config_files():
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        value = parser.get("global", "index-url", fallback="").strip()
        if value:
            return value.rstrip("/")
    return DEFAULT_INDEX


def _pip_config_files() -> list[Path]:
    """pip's config files, most specific first (PIP_CONFIG_FILE, user, then site-wide)."""
    explicit = os.environ.get("PIP_CONFIG_FILE")
    home = Path.home()
    files = [Path(explicit)] if explicit else []
    return files + [home / ".config" / "pip" / "pip.conf", home / ".pip" / "pip.conf", Path("/etc/pip.conf")]


def compatible_wheel(filename: str, tags: frozenset[str] | None = None) -> bool:
    """Whether a wheel file name carries a tag this interpreter supports (sdists and eggs never do)."""
    if not filename.endswith(".whl"):
        return False
    try:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    supported = tags if tags is not None else _supported_tags()
    return any(str(tag) in supported for tag in wheel_tags)


def _supported_tags() -> frozenset[str]:
    return frozenset(str(t) for t in sys_tags())


def _python_ok(requires_python: str | None) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(
            f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}")
    except InvalidSpecifier:
        return True  # an unreadable constraint is the installer's business, not a reason to hide a release


def parse_simple_json(project: str, document: dict, tags: frozenset[str] | None = None) -> list[str]:
    """Final, non-yanked releases with a compatible wheel, from a PEP 691 project page; oldest first."""
    supported = tags if tags is not None else _supported_tags()
    found: set[Version] = set()
    for entry in document.get("files") or []:
        filename = str(entry.get("filename") or "")
        if entry.get("yanked") or not compatible_wheel(filename, supported):
            continue  # a yanked file is yanked for every installer (PEP 592); yanked releases yank all files
        if not _python_ok(entry.get("requires-python")):
            continue
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        if canonicalize_name(name) != canonicalize_name(project) or version.is_prerelease or version.is_devrelease:
            continue
        found.add(version)
    return [str(v) for v in sorted(found)]


def _fetch(project: str, url: str) -> dict:
    request = urllib.request.Request(f"{url}/{canonicalize_name(project)}/", headers={"Accept": _JSON_ACCEPT})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # noqa: S310 - the configured index
        content_type = response.headers.get("Content-Type", "")
        body = response.read()
    if "json" not in content_type:
        raise ReleaseIndexError(f"the index {url} answered {content_type or 'no content type'} for {project}, "
                                "not the JSON simple API (PEP 691); point UV_DEFAULT_INDEX/PIP_INDEX_URL at an "
                                "index that serves it (PyPI, devpi, Artifactory and Nexus do)")
    return json.loads(body)


def _cache_path(project: str, url: str, cache_dir: Path | None) -> Path:
    cache = Path(cache_dir) if cache_dir is not None else settings.env_cache()
    # The key holds what changes the answer: the index and the interpreter's tags.
    key = hashlib.sha256("\n".join([url, *sorted(_supported_tags())]).encode())
    return cache / RELEASES_DIR / f"{canonicalize_name(project)}-{key.hexdigest()[:12]}.json"


def _read_cache(path: Path) -> ReleaseList | None:
    try:
        data = json.loads(path.read_text())
        return ReleaseList(str(data["project"]), str(data["index_url"]), tuple(str(v) for v in data["versions"]),
                           float(data["fetched_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def releases(project: str, cache_dir: Path | None = None, *, refresh: bool = False) -> ReleaseList:
    """The project's installable final releases on the configured index (cached with the resolve TTL).

    Raises:
        ReleaseIndexError: the index cannot be read and nothing was cached before.
    """
    url = index_url()
    path = _cache_path(project, url, cache_dir)
    cached = _read_cache(path)
    ttl = settings.resolve_ttl_s()
    if cached is not None and not refresh and 0 <= time.time() - cached.fetched_at < ttl:
        return cached
    try:
        versions = parse_simple_json(project, _fetch(project, url))
    except (OSError, urllib.error.URLError, ValueError, ReleaseIndexError) as exc:
        if cached is None:
            raise ReleaseIndexError(f"cannot list the releases of {project} on {url}: {exc}; check the network "
                                    "or the index setting (UV_DEFAULT_INDEX / PIP_INDEX_URL)") from None
        when = datetime.fromtimestamp(cached.fetched_at, timezone.utc).isoformat(timespec="seconds")
        log.warning("cannot refresh the releases of %s on %s (%s); using the list from %s", project, url, exc, when)
        return cached
    result = ReleaseList(project, url, tuple(versions), time.time())
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"project": project, "index_url": url, "versions": list(versions), "fetched_at": result.fetched_at}
    write_text(path, json.dumps(data, indent=1), durable=False)  # a cache with a TTL: atomic, no fsync
    return result


def requirements_for(project: str, version: str) -> tuple[str, ...]:
    """The venv requirements that install `project==version` as the matrices do.

    onnxruntime wheels before 1.19 were built against numpy 1.x, so those get `numpy<2`.
    """
    pins = (f"{project}=={version}",)
    if canonicalize_name(project) == "onnxruntime" and sort_key(version) < sort_key("1.19"):
        pins += ("numpy<2",)
    return pins


def sort_key(version: str) -> Version:
    """A release's place in release order (raises InvalidVersion for text that is no version)."""
    return Version(version)
