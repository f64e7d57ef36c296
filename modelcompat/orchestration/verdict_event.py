"""The `modelcompat.verdict` Prefect event: a finished check's verdict on a model version, for automations to act on
(deployments/automations.yaml notifies a webhook on `fail`/`regressed`).

Resource: the model version (`modelcompat.model.<name>.<version>`, as the registry events), labelled with the
verdict and run id so a trigger can match on them (Prefect triggers match resource labels, not the payload).
Payload: model, version, verdict, run id and what else a receiver needs to act without asking back. Emitted by the
`check-matrix` flow (Prefect's client) and by a run recorded over the REST API (`POST /events`); a run with no
Prefect API configured and nothing to run emits nothing (there is no server to receive it).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from modelcompat.model_registry.local import model_resource
from modelcompat.results.summary import RunSummary

VERDICT_EVENT = "modelcompat.verdict"


def verdict_event(summary: RunSummary, flow_run_id: str | None = None) -> dict[str, Any]:
    """`event`, `resource`, `payload` and `related` of the run's verdict event (emit_event's keyword arguments)."""
    model = summary.model
    verdict = summary.verdict.value
    resource = {**model_resource(model.name, model.version), "modelcompat.verdict": verdict,
                "modelcompat.run_id": summary.run_id, "prefect.resource.name": f"{model.name} {model.version}"}
    payload = {"model": model.name, "version": model.version, "verdict": verdict, "run_id": summary.run_id,
               "model_sha256": model.sha256, "matrix": summary.matrix.name, "trigger": summary.trigger,
               "flow_run_id": summary.flow_run_id, "counts": dict(summary.counts),
               "regressions": len(summary.regressions), "baseline_run_id": summary.baseline_run_id,
               "report": f"modelcompat report {summary.run_id} --format html"}
    related = []
    if flow_run_id:
        related.append({"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"})
    return {"event": VERDICT_EVENT, "resource": resource, "payload": payload, "related": related}


def event_document(summary: RunSummary, flow_run_id: str | None = None) -> dict[str, Any]:
    """The event as Prefect's `POST /events` takes it (a client-side Event: with its id and time)."""
    return {**verdict_event(summary, flow_run_id), "id": str(uuid.uuid4()),
            "occurred": datetime.now(timezone.utc).isoformat()}


def emit_verdict(summary: RunSummary, logger: Any) -> None:
    """Emit the event with Prefect's client (in a flow run it also relates the flow run, flow and deployment). A
    failure is a warning: the run is already stored and its verdict written back."""
    try:
        from prefect.events import emit_event

        fields = verdict_event(summary)
        if emit_event(event=fields["event"], resource=fields["resource"], payload=fields["payload"],
                      related=fields["related"]) is None:
            logger.warning("run %s: the %s event was not emitted (no Prefect API)", summary.run_id, VERDICT_EVENT)
    except Exception as exc:  # noqa: BLE001 - an event that cannot be sent must not fail a finished run
        logger.warning("run %s: could not emit the %s event: %s", summary.run_id, VERDICT_EVENT, exc)
