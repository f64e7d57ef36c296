"""Flow `on-model-registered`: a registry event (registration or alias move) checks that version."""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from modelcompat import settings
from modelcompat.flows.check_version import check_version
from modelcompat.model_registry.promotion_gate import PROMOTABLE, set_alias_gated
from modelcompat.model_registry.selection import open_registry
from modelcompat.store import Store


def _name_event_run() -> str:
    p = flow_run.parameters
    return f"check {p.get('model_name')} {p.get('version')} (registry event)"


@flow(name="on-model-registered", flow_run_name=_name_event_run)
def on_model_registered(model_name: str, version: str, matrix: str | None = None,
                        promote_to: str | None = None) -> dict[str, Any]:
    """Check a model version when it is registered (or an alias moves to it); write the verdict back. With
    `promote_to` (an alias such as staging; default `$MODELCOMPAT_PROMOTE_TO` of the serving process), a version
    whose verdict is pass or warn is moved there through the promotion gate (recorded in the audit trail as this
    flow run); any other verdict leaves the alias alone."""
    result = check_version(model_name, version, matrix=matrix, trigger="registry_event")
    promote_to = promote_to or settings.promote_alias()
    if promote_to and result["verdict"] in PROMOTABLE:
        record = set_alias_gated(open_registry(), Store(settings.store_uri()), model_name, promote_to,
                                 result["version"], reason=f"checks passed in run {result['run_id']}")
        get_run_logger().info("%s@%s -> %s (audit record %s)", model_name, promote_to, result["version"], record["seq"])
        result["promoted_to"] = promote_to
    return result
