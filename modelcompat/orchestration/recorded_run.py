"""A run that needs no Dask (nothing to run, or one local cell), recorded on the configured Prefect API over its
REST interface rather than run by Prefect's flow engine in this process.

Why: on such a run Prefect cost more than the work. One forced check of one BERT cell with a server running took
3.6 s, of which importing Prefect was ~1.0 s, its flow engine ~0.3 s, joining its heartbeat thread ~0.8 s and its
teardown ~0.6 s (issue 14; the cell itself ran beside the import). The record is the same as the `check-matrix`
flow's: a flow run of that flow with the same name and parameters, one task run per cell (`check <cell>`), the
plan, table and summary artifacts under the same keys, the `modelcompat.verdict` event, the run's log lines, and a
final state, with the flow run id in the store's runs row and the summary. The calls are a handful of small JSON
requests on the standard library's HTTP client (importing httpx costs ~0.2 s, more than all the requests together).

A deployment's run (nightly, registry event, the UI) is still a real flow run: only `modelcompat run` takes this
path, and only when it would start no Dask cluster.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from modelcompat.errors import ModelcompatError
from modelcompat.execution.harness import CellJob
from modelcompat.orchestration.matrix_run import (
    FinishedRun,
    PreparedRun,
    announce,
    cell_failed_reports,
    finish_run,
    keep_cell,
    run_name,
)
from modelcompat.orchestration.verdict_event import event_document
from modelcompat.planning.plan import plan_markdown
from modelcompat.render.prefect_artifacts import artifact_key, markdown_summary, table_rows
from modelcompat.results.report import Report

log = logging.getLogger(__name__)

FLOW_NAME = "check-matrix"  # the flow this run is a run of (flows/check_matrix.py)
TASK_KEY = "check_cell_task"  # its per-cell task (flows/check_matrix.py: check_cell_task)
_TIMEOUT_S = 30.0
_RETRY_CODES = (429, 502, 503)
_RETRIES = 5
_BACKOFF_S = 0.5


class PrefectApiError(ModelcompatError):
    """The configured Prefect API refused or did not answer a request."""


class PrefectRest:
    """The few Prefect REST calls a recorded run makes (POST with a JSON body, JSON back)."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")

    def post(self, path: str, body: Any) -> Any:
        # As Prefect's own client: a server busy on its SQLite file answers 503 ("database is locked") and a
        # proxy 429/502; those are retried with backoff (two runs recorded at once hit it), others are not.
        for attempt in range(_RETRIES + 1):
            try:
                return self._post_once(path, body)
            except urllib.error.HTTPError as exc:
                if exc.code not in _RETRY_CODES or attempt == _RETRIES:
                    raise self._refused(path, exc) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                time.sleep(float(retry_after) if retry_after and retry_after.isdigit() else _BACKOFF_S * 2 ** attempt)
        raise AssertionError("unreachable")

    def _post_once(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(f"{self.api_url}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # noqa: S310 (the user's API URL)
                text = response.read()
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrefectApiError(f"the Prefect API at {self.api_url} did not answer POST {path}: {reason} "
                                  "(is the server running? check PREFECT_API_URL)") from None
        return json.loads(text) if text else None

    def _refused(self, path: str, exc: urllib.error.HTTPError) -> PrefectApiError:
        detail = exc.read().decode(errors="replace")[:500]
        return PrefectApiError(f"the Prefect API at {self.api_url} answered {exc.code} to POST {path}: {detail}"
                               " (check PREFECT_API_URL and the server's version)")


def _state(kind: str, message: str | None = None) -> dict[str, Any]:
    return {"type": kind, "name": kind.capitalize(), "message": message}


class _FlowRunLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for the run's steps whose lines also go to the flow run's log on the server, as
    `get_run_logger()`'s do in the flow (sent with the final state, in one request)."""

    def __init__(self) -> None:
        super().__init__(log, {})
        self.lines: list[dict[str, Any]] = []

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)
        self.lines.append({"level": level, "message": str(msg) % args if args else str(msg),
                           "timestamp": datetime.now(timezone.utc).isoformat()})


def recorded_run(run: PreparedRun, *, api_url: str, check_cell: Callable[[CellJob], list[Report]],
                 parameters: dict[str, Any], trigger: str = "cli") -> FinishedRun:
    """Finish `run` in this process (its cell, if it has one, already started in `run.running`), recorded as
    a `check-matrix` flow run on `api_url`. An API that cannot be reached fails the run before anything is
    stored (as the flow would); the cell's probe is then killed as the process exits."""
    rest = PrefectRest(api_url)
    flow = rest.post("/flows/", {"name": FLOW_NAME})
    flow_run = rest.post("/flow_runs/", {"flow_id": flow["id"], "name": run_name(parameters),
                                         "parameters": parameters, "state": _state("RUNNING")})
    flow_run_id = flow_run["id"]
    logger = _FlowRunLog()
    key = artifact_key(run.package.manifest.name)
    rest.post("/artifacts/", {"key": key + "-plan", "type": "markdown", "data": plan_markdown(run.plan),
                              "description": f"run {run.run_id}: plan", "flow_run_id": flow_run_id})
    announce(run, logger)

    for job in run.jobs:
        task_run = _recorded(rest.post, "/task_runs/", {"flow_run_id": flow_run_id, "name": f"check {job.cell.id}",
                                                        "task_key": TASK_KEY, "dynamic_key": job.cell.id,
                                                        "state": _state("RUNNING")})
        future = run.running.get(job.cell.id)
        try:
            reports = future.result() if future is not None else check_cell(job)
            outcome = _state("COMPLETED")
        except Exception as exc:  # the cell's job died: every check says `error`, as the flow does
            reports = cell_failed_reports(run, job, exc)
            outcome = _state("FAILED", f"{type(exc).__name__}: {exc}"[:500])
        keep_cell(run, job, reports, logger)
        if task_run is not None:
            _recorded(rest.post, f"/task_runs/{task_run['id']}/set_state", {"state": outcome, "force": True})

    finished = finish_run(run, trigger=trigger, flow_run_id=flow_run_id, logger=logger)
    summary = finished.summary
    _recorded(rest.post, "/artifacts/", {"key": key, "type": "table", "data": json.dumps(table_rows(finished.reports)),
                                         "description": f"run {run.run_id}: verdict {summary.verdict.value}",
                                         "flow_run_id": flow_run_id})
    _recorded(rest.post, "/artifacts/", {"key": key + "-summary", "type": "markdown",
                                         "data": markdown_summary(summary),
                                         "description": f"run {run.run_id} summary", "flow_run_id": flow_run_id})
    # The verdict event, as the flow emits it (automations act on it): Prefect's REST endpoint for client events.
    _recorded(rest.post, "/events", [event_document(summary, flow_run_id)])
    _recorded(rest.post, "/logs/", [{"name": "prefect.flow_runs", "flow_run_id": flow_run_id, **line}
                                    for line in logger.lines])
    _recorded(rest.post, f"/flow_runs/{flow_run_id}/set_state",
              {"state": _state("COMPLETED", f"run {run.run_id}: verdict {summary.verdict.value}"), "force": True})
    return finished


def _recorded(post: Callable[[str, Any], Any], path: str, body: Any) -> Any:
    """A record made once the flow run exists: the server failing now must not cost the run (its cell ran and
    its reports go to the store), so the failure is a warning naming what the server is missing."""
    try:
        return post(path, body)
    except PrefectApiError as exc:
        log.warning("the flow run's record on the server is incomplete: %s", exc)
        return None
