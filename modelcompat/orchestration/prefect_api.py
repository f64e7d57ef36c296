"""The run's Prefect API: `PREFECT_API_URL` when set, else one local server started for the run.

We start exactly one Prefect server per CLI run that goes through the flow (unless PREFECT_API_URL is set; a
run with nothing to run and no API configured starts none) and put its URL in the environment before any
worker spawns: a process without it would start a temporary server of its own on one SQLite file
(≈150 ms/task and "database is locked", DESIGN.md).

The server is launched first, before this process imports Prefect: it is the same uvicorn command Prefect's
`SubprocessASGIServer` runs, started without importing Prefect's server package here (≈2 s of imports this
process never uses), so its boot overlaps this process's own Prefect import and the Dask cluster's start
(`launch_own_server`, then `prefect_api(server=…)`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from modelcompat.errors import ModelcompatError

log = logging.getLogger(__name__)

_HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")
_START_TIMEOUT_S = 120.0  # unless the user sets Prefect's own setting for it (start_timeout_s)
_START_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
_PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind: another port is tried

# The server's own settings, unless the user set them (environment or profile).
# That server writes one SQLite file from three places: the API, the task-run recorder (task runs and their
# states, built from the client's events) and the event persister (the UI's event feed). An API write that
# reads first (creating a flow run, setting its state) fails at once with "database is locked" when another
# writer committed meanwhile: SQLite does not wait on a busy timeout to upgrade a read transaction to a write
# one. The server answers 503 and Prefect's client retries after ~2 s. By default the recorder writes one
# transaction per event (3 per task run) and falls ~2 s behind a 40-cell run, so the next API write (the next
# flow run, the run's final state) collided with it in most runs, and the task runs still queued when the
# server stopped were never recorded. Batched, it keeps up and writes a few times per run, all of it flushed on
# stop. The event persister is off: its writes collided too, and the run's flow runs, task runs, states and
# logs are stored without it.
_OWN_SERVER_SETTINGS = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
}
# What Prefect's SubprocessASGIServer sets for its temporary server (no UI; an ephemeral, final server).
_EPHEMERAL_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


class PrefectServerError(ModelcompatError):
    """The run's own Prefect server did not start."""


def configured_api_url() -> str | None:
    """The Prefect API the user configured (`PREFECT_API_URL`), or None: a run would start its own server."""
    return os.environ.get("PREFECT_API_URL") or None


def _profile_settings() -> dict[str, Any]:
    """The active Prefect profile's settings, read as Prefect reads them (profiles.toml under PREFECT_HOME),
    without importing Prefect."""
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    settings = profiles.get("profiles", {}).get(active, {})
    return settings if isinstance(settings, dict) else {}


def own_server_environment() -> dict[str, str]:
    """The environment our server process starts with: this one, plus our settings the user did not set."""
    user_set = set(os.environ) | set(_profile_settings())
    env = {**os.environ, **_EPHEMERAL_SERVER_ENV}
    env.update({k: v for k, v in _OWN_SERVER_SETTINGS.items() if k not in user_set})
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def start_timeout_s() -> float:
    """How long a run waits for its own server: Prefect's setting for its temporary server when the user set it
    (environment or profile; a busy machine may need more), else 120 s."""
    value = os.environ.get(_START_TIMEOUT_SETTING) or _profile_settings().get(_START_TIMEOUT_SETTING)
    try:
        return float(value) if value not in (None, "") else _START_TIMEOUT_S
    except (TypeError, ValueError):
        raise PrefectServerError(f"{_START_TIMEOUT_SETTING}={value!r} is not a number of seconds; set it to e.g. "
                                 "300, or unset it for the default 120") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OwnServer:
    """A local Prefect server process started for one run; `wait()` blocks until it answers."""

    port: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait(self, timeout: float | None = None) -> None:
        timeout = start_timeout_s() if timeout is None else timeout
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code == _PORT_IN_USE:  # lost the port between choosing and binding it: take another
                self.port, self.process = _launch()
                continue
            if code is not None:
                raise PrefectServerError(f"the run's Prefect server exited with code {code} while starting; "
                                         "run `prefect server start` to see why, or set PREFECT_API_URL to a "
                                         "running server")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise PrefectServerError(f"the run's Prefect server did not answer within {timeout:.0f} s; set "
                                 "PREFECT_API_URL to a running Prefect server, or give it longer on a busy machine "
                                 f"({_START_TIMEOUT_SETTING}=300)")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _launch() -> tuple[int, subprocess.Popen[bytes]]:
    """Prefect's own temporary-server command (SubprocessASGIServer), on a free port of 127.0.0.1."""
    spec = find_spec("prefect")
    if spec is None or spec.origin is None:
        raise PrefectServerError("prefect is not installed: install modelcompat with its dependencies")
    port = _free_port()
    args = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]
    return port, subprocess.Popen(args, env=own_server_environment(), stdin=subprocess.DEVNULL)


def launch_own_server(home: str | None = None) -> OwnServer | None:
    """Start the run's own server now (None when PREFECT_API_URL is set); `prefect_api(server=…)` waits for it.

    `home`: its PREFECT_HOME, unless one is set (it holds the server's database).
    """
    if configured_api_url():
        return None
    if home and "PREFECT_HOME" not in os.environ:
        # Prefect creates only the last path component itself: make the whole path first.
        Path(home).mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    port, process = _launch()
    return OwnServer(port, process)


@contextlib.contextmanager
def prefect_api(home: str | None = None, server: OwnServer | None = None) -> Iterator[str]:
    """Yield a Prefect API URL: `PREFECT_API_URL` when set, else a local server for this block (`server`, when
    `launch_own_server` started it earlier, else started here)."""
    existing = configured_api_url()
    if existing:
        yield existing
        return
    server = server or launch_own_server(home)
    assert server is not None
    try:
        # Prefect's import (seconds) while the server boots, not after: neither needs the other.
        from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        server.wait()
        os.environ["PREFECT_API_URL"] = server.api_url  # inherited by Dask worker processes spawned later

        updates: dict[Any, Any] = {PREFECT_API_URL: server.api_url}
        if not any(os.environ.get(k) for k in _HEARTBEAT_VARIABLES):
            # Heartbeats let a long-lived server notice a crashed flow run; this server lives and dies
            # with the run, so they buy nothing here, and stopping their thread costs up to 1 s at the
            # end of every run (it sleeps in 1 s steps): a third of a no-change re-run.
            updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
        with temporary_settings(updates=updates):
            try:
                yield server.api_url
            finally:
                _drain_prefect_logs()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _drain_prefect_logs() -> None:
    """Ship buffered run logs before the server goes away (else: 'Error logging to API')."""
    try:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
    except Exception as exc:  # logging must never fail a finished run
        log.debug("could not drain Prefect logs: %s", exc)
