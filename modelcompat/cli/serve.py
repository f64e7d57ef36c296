"""`modelcompat serve` (the deployments), `modelcompat server` (a local Prefect server) and
`modelcompat webhook serve` (MLflow webhooks in, Prefect events out)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from modelcompat import settings
from modelcompat.cli.console import console
from modelcompat.errors import InputError

DEFAULT_API_TIMEOUT_S = 60.0

webhook_app = typer.Typer(no_args_is_help=True, help="Receive MLflow model registry webhooks as Prefect events.")


def _require_api_url() -> str:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise InputError("PREFECT_API_URL is not set", field="PREFECT_API_URL",
                         fix="start a server (`modelcompat server`) and export PREFECT_API_URL=http://127.0.0.1:4200/api")
    return url


def serve(
    limit: Annotated[int | None, typer.Option(help="Most runs executed at once.")] = None,
    api_timeout: Annotated[float, typer.Option(min=0, metavar="SECONDS", help="Seconds to wait for the Prefect API to answer (it may be starting alongside) before giving up.")] = DEFAULT_API_TIMEOUT_S,
) -> None:
    """Serve the nightly-matrix, on-model-registered and validate-one deployments (needs PREFECT_API_URL)."""
    from modelcompat.cli.api_wait import ApiUnavailableError, wait_for_api

    url = _require_api_url()

    def waiting(reason: str) -> None:
        console.print(f"waiting for the Prefect API at {url} (up to {api_timeout:g} s; {reason})", highlight=False,
                      soft_wrap=True)

    if wait_for_api(url, api_timeout, on_wait=waiting):
        console.print(f"the Prefect API at {url} answers", highlight=False, soft_wrap=True)
    import httpx

    from modelcompat.flows.deployments import serve as serve_deployments

    try:
        serve_deployments(limit=limit)
    except httpx.TransportError as exc:  # the server went away after answering: one line, not a traceback
        raise ApiUnavailableError(f"lost the Prefect API at {url}: {type(exc).__name__}: {exc}") from None


def server(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4200,
    host: Annotated[str, typer.Option(help="Address to bind; the default keeps it on this machine.")] = "127.0.0.1",
) -> None:
    """Start a local Prefect server (UI and API), bound to 127.0.0.1 by default."""
    import subprocess

    prefect = Path(sys.executable).with_name("prefect")
    console.print(f"Prefect UI and API on http://{host}:{port} — export PREFECT_API_URL=http://{host}:{port}/api")
    raise typer.Exit(subprocess.call([str(prefect), "server", "start", "--host", host, "--port", str(port)]))


@webhook_app.command("serve")
def webhook_serve(
    host: Annotated[str, typer.Option(help="Address to bind; the default keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Verify MLflow webhook deliveries (HMAC secret from $MODELCOMPAT_WEBHOOK_SECRET) and emit the Prefect events."""
    import logging

    from modelcompat.model_registry import webhook

    if not settings.webhook_secret():
        raise InputError(f"{webhook.SECRET_ENV} is not set: refusing to accept unsigned webhooks",
                         field=webhook.SECRET_ENV, fix="export the same secret the MLflow webhook was created with")
    if not os.environ.get("PREFECT_API_URL"):
        raise InputError("PREFECT_API_URL is not set: the events would reach no server", field="PREFECT_API_URL",
                         fix="export PREFECT_API_URL=http://127.0.0.1:4200/api (see `modelcompat server`)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(f"MLflow webhook receiver on http://{host}:{port}/webhook — events to {os.environ['PREFECT_API_URL']}")
    webhook.serve(host, port, deliveries_file=settings.home() / "webhook-deliveries.jsonl")
