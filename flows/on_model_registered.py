"""Flow `on-model-registered`: a registry event (registration or alias move) checks that version."""
from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from modelcompat.flows.check_version import check_version


def _name_event_run() -> str:
    p = flow_run.parameters
    return f"check {p.get('model_name')} {p.get('version')} (registry event)"


@flow(name="on-model-registered", flow_run_name=_name_event_run)
def on_model_registered(model_name: str, version: str, matrix: str | None = None) -> dict[str, Any]:
    """Check a model version when it is registered (or an alias moves to it); write the verdict back."""
    return check_version(model_name, version, matrix=matrix, trigger="registry_event")
