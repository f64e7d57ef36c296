"""Shared fixtures: isolated state dirs, the demo package, and a real Prefect server on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.servers import free_port, stop_group, wait_healthy

BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own store and state; the env cache stays shared (venvs are keyed by spec)."""
    monkeypatch.setenv("MODELCOMPAT_HOME", str(tmp_path / "mc-home"))
    monkeypatch.delenv("MODELCOMPAT_STORE", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _session_timing_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One timing lock for the session, not the machine's: a test suite running beside another (a second
    checkout, a CI neighbour) must not wait on that suite's timed checks. Within the session the lock
    works as in production; tests of the lock itself use their own paths."""
    previous = os.environ.get("MODELCOMPAT_TIMING_LOCK")
    os.environ["MODELCOMPAT_TIMING_LOCK"] = str(tmp_path_factory.mktemp("timing") / "timing.lock")
    yield
    if previous is None:
        os.environ.pop("MODELCOMPAT_TIMING_LOCK", None)
    else:
        os.environ["MODELCOMPAT_TIMING_LOCK"] = previous


@pytest.fixture(scope="session")
def demo_package(tmp_path_factory: pytest.TempPathFactory):
    """The built-in demo package, built once per test session."""
    from modelcompat.model.demo import build_demo

    return build_demo(tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `prefect server start` on 127.0.0.1, stopped at the end of the session; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    wait_healthy(url + "/health", proc, home / "server.log", "prefect server")
    try:
        yield url
    finally:
        stop_group(proc, timeout=20)
        log.close()
