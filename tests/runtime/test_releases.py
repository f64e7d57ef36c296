"""Release discovery: the real index (PyPI here), filtering by wheel tags/yank/pre-release, the cache and its TTL."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from modelcompat.runtime import releases as rel
from modelcompat.runtime.releases import (
    ReleaseIndexError,
    index_url,
    parse_simple_json,
    releases,
    requirements_for,
)

TAGS = frozenset({"cp311-cp311-manylinux_2_27_x86_64", "py3-none-any"})


def _file(name: str, **extra: object) -> dict:
    return {"filename": name, "url": f"https://example/{name}", "hashes": {}, **extra}


def test_only_final_unyanked_releases_with_a_wheel_for_this_interpreter_count() -> None:
    document = {"files": [
        _file("onnxruntime-1.16.3-cp311-cp311-manylinux_2_27_x86_64.whl"),
        _file("onnxruntime-1.17.0-cp311-cp311-manylinux_2_27_x86_64.whl", yanked="broken build"),
        _file("onnxruntime-1.17.1-cp310-cp310-manylinux_2_27_x86_64.whl"),  # another Python only
        _file("onnxruntime-1.17.2.tar.gz"),  # sdist only
        _file("onnxruntime-1.18.0rc1-cp311-cp311-manylinux_2_27_x86_64.whl"),  # pre-release
        _file("onnxruntime-1.18.0-cp311-cp311-manylinux_2_27_x86_64.whl", **{"requires-python": ">=3.12"}),
        _file("onnxruntime-1.18.1-py3-none-any.whl", yanked=False),
        _file("onnxruntime-1.9.0-cp311-cp311-manylinux_2_27_x86_64.whl"),
    ]}
    assert parse_simple_json("onnxruntime", document, TAGS) == ["1.9.0", "1.16.3", "1.18.1"]


def test_the_real_index_lists_onnxruntime_releases_in_order(tmp_path: Path) -> None:
    listed = releases("onnxruntime", tmp_path)
    versions = list(listed.versions)
    assert {"1.16.3", "1.17.3", "1.18.0", "1.19.2"} <= set(versions)
    assert versions == sorted(versions, key=rel.sort_key)
    assert not any(rel.sort_key(v).is_prerelease for v in versions)
    assert "1.17.2" not in versions  # never released with wheels for CPython 3.11 (1.17.1 -> 1.17.3)
    assert listed.index_url == index_url()


def test_the_list_is_cached_for_the_ttl_then_refreshed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = releases("onnxruntime", tmp_path)
    [cache_file] = (tmp_path / rel.RELEASES_DIR).glob("onnxruntime-*.json")
    data = json.loads(cache_file.read_text())
    data["versions"] = ["1.0.0"]  # a list the index never gives: seen only if the cache answers
    cache_file.write_text(json.dumps(data))
    assert releases("onnxruntime", tmp_path).versions == ("1.0.0",)
    monkeypatch.setenv("MODELCOMPAT_RESOLVE_TTL_S", "0")
    assert releases("onnxruntime", tmp_path).versions == first.versions


def test_an_unreachable_index_uses_the_stale_list_or_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("UV_DEFAULT_INDEX", "http://127.0.0.1:9/simple")  # nothing listens on port 9
    with pytest.raises(ReleaseIndexError, match="cannot list the releases of onnxruntime on http://127.0.0.1:9"):
        releases("onnxruntime", tmp_path)
    path = rel._cache_path("onnxruntime", index_url(), tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"project": "onnxruntime", "index_url": index_url(), "versions": ["1.16.3"],
                                "fetched_at": 0.0}))  # stale
    with caplog.at_level(logging.WARNING):
        assert releases("onnxruntime", tmp_path).versions == ("1.16.3",)
    assert "using the list from 1970-01-01" in caplog.text


def test_the_index_is_the_one_uv_or_pip_is_configured_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple/\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert index_url() == "https://mirror.example/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip.example/simple")
    assert index_url() == "https://pip.example/simple"
    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://uv.example/simple")
    assert index_url() == "https://uv.example/simple"


def test_old_onnxruntime_gets_numpy_1() -> None:
    assert requirements_for("onnxruntime", "1.18.1") == ("onnxruntime==1.18.1", "numpy<2")
    assert requirements_for("onnxruntime", "1.19.0") == ("onnxruntime==1.19.0",)
