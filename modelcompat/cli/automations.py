"""`modelcompat automations apply`: create modelcompat's Prefect automations (deployments/automations.yaml) on the
server PREFECT_API_URL names, e.g. a webhook called when a check's verdict is fail or regressed."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelcompat.cli.console import console
from modelcompat.errors import InputError

automations_app = typer.Typer(no_args_is_help=True, help="Prefect automations acting on modelcompat's events.")


@automations_app.command("apply")
def apply(
    webhook_url: Annotated[str, typer.Option("--webhook-url", help="Where the webhook actions POST their JSON (e.g. "
                                             "a chat or incident tool's incoming webhook).")],
    header: Annotated[list[str] | None, typer.Option("--header", help="A header sent with each call, NAME=VALUE "
                                                     "(repeatable), e.g. an Authorization token.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="The automations file (default: "
                                              "deployments/automations.yaml).")] = None,
) -> None:
    """Create (or replace, by name) the automations of deployments/automations.yaml: `modelcompat-verdict-webhook`
    POSTs model, version, verdict and run id to --webhook-url whenever a check's `modelcompat.verdict` event says
    fail or regressed. The webhook is a Prefect Webhook block of the same name. Needs PREFECT_API_URL."""
    import os

    from modelcompat.orchestration.automations import AUTOMATIONS_FILE, apply_automations

    if not os.environ.get("PREFECT_API_URL"):
        raise InputError("PREFECT_API_URL is not set", field="PREFECT_API_URL",
                         fix="start a server (`modelcompat server`) and export "
                             "PREFECT_API_URL=http://127.0.0.1:4200/api")
    if not webhook_url.startswith(("http://", "https://")):
        raise InputError(f"{webhook_url!r} is not an http(s) URL", field="--webhook-url",
                         fix="give the full URL, e.g. https://hooks.example.org/model-checks")
    headers = {}
    for item in header or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"header {item!r} is not NAME=VALUE", field="--header",
                             fix="e.g. --header 'Authorization=Bearer TOKEN'")
        headers[name.strip()] = value
    created = apply_automations(file or AUTOMATIONS_FILE, webhook_url, headers)
    for name, automation_id in created.items():
        console.print(f"automation {name} created ({automation_id})", highlight=False)
