"""Apply modelcompat's Prefect automations (deployments/automations.yaml) to a server: save the Webhook block each
`call-webhook` action names (`block_name`) with the URL given, and create each automation, replacing one of the
same name, so applying twice leaves one of each."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from modelcompat import settings
from modelcompat.errors import InputError
from modelcompat.files.yaml_reader import load_yaml_mapping

AUTOMATIONS_FILE = settings.REPO_ROOT / "deployments" / "automations.yaml"


def load_automations(path: Path) -> list[dict[str, Any]]:
    """The `automations:` list of the file, each checked against Prefect's automation schema (block ids aside).

    Raises:
        InputError: not YAML, no `automations` list, or an automation Prefect would refuse (names the field).
    """
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    data = load_yaml_mapping(path, InputError)
    automations = data.get("automations")
    if not isinstance(automations, list) or not automations:
        raise InputError("no `automations:` list", file=path, field="automations",
                         fix="list the automations under `automations:` (see deployments/automations.yaml)")
    for index, automation in enumerate(automations):
        try:  # with a placeholder id for each named block: the rest must be what Prefect accepts
            AutomationCore.model_validate(with_block_ids(automation, lambda name: "0" * 32))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(f"not a Prefect automation: {first['msg']}", file=path,
                             field=f"automations[{index}].{where}",
                             fix="follow Prefect's automation schema (prefect automation create --from-file)") from None
    return automations


def with_block_ids(automation: dict[str, Any], block_id: Any) -> dict[str, Any]:
    """The automation with each action's `block_name` replaced by `block_document_id: block_id(name)`."""
    resolved = copy.deepcopy(automation)
    for action in resolved.get("actions") or []:
        if isinstance(action, dict) and "block_name" in action:
            action["block_document_id"] = str(block_id(action.pop("block_name")))
    return resolved


def block_names(automations: list[dict[str, Any]]) -> set[str]:
    return {a["block_name"] for auto in automations for a in auto.get("actions") or []
            if isinstance(a, dict) and "block_name" in a}


def apply_automations(path: Path, webhook_url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Save the named Webhook blocks (POSTing JSON to `webhook_url`) and create the automations; returns
    automation name -> id. Needs PREFECT_API_URL (or a Prefect profile) pointing at the server."""
    from prefect.blocks.webhook import Webhook
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    automations = load_automations(path)
    ids: dict[str, Any] = {}
    for name in sorted(block_names(automations)):
        block = Webhook(method="POST", url=webhook_url,
                        headers={"Content-Type": "application/json", **(headers or {})})
        ids[name] = block.save(name, overwrite=True)
    created: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for automation in automations:
            core = AutomationCore.model_validate(with_block_ids(automation, ids.__getitem__))
            for existing in client.read_automations_by_name(core.name):
                client.delete_automation(existing.id)
            created[core.name] = str(client.create_automation(core))
    return created
