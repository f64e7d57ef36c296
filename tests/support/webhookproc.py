"""`modelcompat webhook serve` as a subprocess on 127.0.0.1, and helpers to sign deliveries and find Prefect events."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modelcompat.model_registry.webhook import sign
from support.servers import free_port, stop_group, wait_healthy


@dataclass
class Receiver:
    url: str
    log: Path


@contextmanager
def webhook_receiver(tmp: Path, secret: str, prefect_api: str) -> Iterator[Receiver]:
    port = free_port()
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MODELCOMPAT_WEBHOOK_SECRET": secret,
           "MODELCOMPAT_HOME": str(tmp / "receiver-home"), "PREFECT_LOGGING_LEVEL": "DEBUG"}
    log_path = tmp / "receiver.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "modelcompat.cli", "webhook", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base + "/health", proc, log_path, "webhook receiver", timeout=60)
        yield Receiver(base + "/webhook", log_path)
    finally:
        stop_group(proc, timeout=20)
        log.close()


def envelope(entity: str, action: str, data: dict[str, Any]) -> bytes:
    """The JSON body MLflow sends (mlflow/webhooks/delivery.py)."""
    return json.dumps({"entity": entity, "action": action, "timestamp": "2026-01-01T00:00:00+00:00",
                       "data": data}).encode()


def signed_headers(secret: str, body: bytes, *, delivery_id: str | None = None,
                   timestamp: int | None = None) -> dict[str, str]:
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": ts,
            "X-MLflow-Signature": sign(secret, delivery_id, ts, body)}


def model_events(api: str, id_prefix: str) -> list[dict[str, Any]]:
    """Prefect events `model.version.*` whose resource id starts with `id_prefix`."""
    resp = httpx.post(f"{api}/events/filter", timeout=10, json={
        "filter": {"event": {"prefix": ["model.version."]}, "resource": {"id_prefix": [id_prefix]}}, "limit": 50})
    resp.raise_for_status()
    return resp.json()["events"]


def wait_for_events(api: str, id_prefix: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = model_events(api, id_prefix)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.5)
