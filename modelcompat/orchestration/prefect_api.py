"""The run's Prefect API: `PREFECT_API_URL` when set, else one local server started for the run.

We start exactly one Prefect server per CLI run that goes through the flow (unless PREFECT_API_URL is set; a
run with nothing to run and no API configured starts none) and put its URL in the environment before any
worker spawns: a process without it would start a temporary server of its own on one SQLite file
(≈150 ms/task and "database is locked", DESIGN.md).
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


def _own_server_settings() -> dict[Any, Any]:
    """Settings for the server `prefect_api` starts, minus any the user set (environment or profile).

    That server writes one SQLite file from three places: the API, the task-run recorder (task runs and
    their states, built from the client's events) and the event persister (the UI's event feed). An API
    write that reads first (creating a flow run, setting its state) fails at once with "database is
    locked" when another writer committed meanwhile: SQLite does not wait on a busy timeout to upgrade a
    read transaction to a write one. The server answers 503 and Prefect's client retries after ~2 s.
    By default the recorder writes one transaction per event (3 per task run) and falls ~2 s behind a
    40-cell run, so the next API write (the next flow run, the run's final state) collided with it in
    most runs, and the task runs still queued when the server stopped were never recorded. Batched, it keeps
    up and writes a few times per run, all of it flushed on stop. The event persister is off: its writes
    collided too, and the run's flow runs, task runs, states and logs are stored without it.
    """
    from prefect.settings import (
        PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED,
        PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE,
        get_current_settings,
    )

    services = get_current_settings().server.services
    updates: dict[Any, Any] = {}
    if "batch_size" not in services.task_run_recorder.model_fields_set:
        updates[PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE] = 100
    if "enabled" not in services.event_persister.model_fields_set:
        updates[PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED] = False
    return updates


def configured_api_url() -> str | None:
    """The Prefect API the user configured (`PREFECT_API_URL`), or None: a run would start its own server."""
    return os.environ.get("PREFECT_API_URL") or None


@contextlib.contextmanager
def prefect_api(home: str | None = None) -> Iterator[str]:
    """Yield a Prefect API URL: `PREFECT_API_URL` when set, else a local server started for this block."""
    existing = configured_api_url()
    if existing:
        yield existing
        return
    if home and "PREFECT_HOME" not in os.environ:
        # Prefect creates only the last path component itself: make the whole path first.
        Path(home).mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    server = SubprocessASGIServer()
    with temporary_settings(updates=_own_server_settings()):  # the server process starts with these
        server.start(timeout=120)
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by Dask worker processes spawned later
    try:
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
