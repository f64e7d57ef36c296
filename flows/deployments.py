"""The three deployments (nightly-matrix, on-model-registered, validate-one), served by `modelcompat serve`.

Kept in step with deployments/prefect.yaml (same names, schedule, trigger and parameters); a test
compares the two so they cannot drift.
"""
from __future__ import annotations

from typing import Any

from modelcompat import settings

NIGHTLY_CRON = settings.nightly_cron()
NIGHTLY_TIMEZONE = settings.nightly_timezone()
REGISTRY_EVENTS = ("model.version.registered", "model.version.alias_set")


def registry_trigger() -> Any:
    """Start `on-model-registered` for each registration or alias move, templating name and version."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name="model-version-registered",
        expect=set(REGISTRY_EVENTS),
        match={"prefect.resource.id": "modelcompat.model.*"},
        parameters={
            "model_name": "{{ event.resource['modelcompat.model.name'] }}",
            "version": "{{ event.resource['modelcompat.model.version'] }}",
        },
    )


def build_deployments() -> list[Any]:
    """RunnerDeployments for `prefect.serve`."""
    from prefect.schedules import Cron

    from modelcompat.flows.nightly_matrix import nightly_matrix
    from modelcompat.flows.on_model_registered import on_model_registered
    from modelcompat.flows.validate_one import validate_one

    return [
        nightly_matrix.to_deployment(
            name="nightly-matrix", schedules=[Cron(NIGHTLY_CRON, timezone=NIGHTLY_TIMEZONE)],
            description="Nightly matrix over every registered model (latest + production alias).",
            tags=["modelcompat"]),
        on_model_registered.to_deployment(
            name="on-model-registered", triggers=[registry_trigger()],
            description="Check a model version when it is registered or an alias moves to it.",
            tags=["modelcompat"]),
        validate_one.to_deployment(
            name="validate-one", description="Re-run one validator on one cell (or a filter of cells).",
            tags=["modelcompat"]),
    ]


def serve(limit: int | None = None) -> None:
    """Serve the deployments against the configured Prefect API until interrupted."""
    from prefect import serve as prefect_serve

    prefect_serve(*build_deployments(), limit=limit, print_starting_message=True)
