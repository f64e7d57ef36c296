"""The MLflow webhook receiver, run as `modelcompat webhook serve`, against a real Prefect server."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from modelcompat.model_registry.local import EVENT_ALIAS_SET, EVENT_REGISTERED
from modelcompat.model_registry.webhook import DeliveryLog, sign
from support.webhookproc import (
    envelope,
    model_events,
    signed_headers,
    wait_for_events,
    webhook_receiver,
)

SECRET = "whsec-" + uuid.uuid4().hex  # unique, so any leak is found by a plain substring search


@pytest.mark.server
def test_only_valid_deliveries_emit_events(prefect_server: str, tmp_path: Path) -> None:
    model = f"wh-{uuid.uuid4().hex[:8]}"  # every resource id of this test starts with modelcompat.model.<model>
    prefix = f"modelcompat.model.{model}"
    answers: list[httpx.Response] = []

    def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        resp = httpx.post(url, content=body, headers=headers, timeout=10)
        answers.append(resp)
        return resp

    with webhook_receiver(tmp_path, SECRET, prefect_server) as rx:
        # 1. correctly signed model_version.created -> 202
        good = envelope("model_version", "created", {"name": model, "version": "1", "source": "/x", "run_id": None,
                                                      "tags": {}, "description": None})
        good_headers = signed_headers(SECRET, good)
        resp = post(rx.url, good, good_headers)
        assert resp.status_code == 202, resp.text
        assert resp.json()["accepted"] == EVENT_REGISTERED

        # 2. the same delivery again (same id, same signature) -> 409, no second event
        resp = post(rx.url, good, good_headers)
        assert (resp.status_code, resp.json()["error"]) == (409, "replayed")

        # 3. wrongly signed (another secret) -> 401
        bad = envelope("model_version", "created", {"name": model, "version": "2"})
        resp = post(rx.url, bad, signed_headers("not-the-secret", bad))
        assert (resp.status_code, resp.json()["error"]) == (401, "bad_signature")

        # 4. signed, then the body altered -> 401
        headers = signed_headers(SECRET, bad)
        altered = envelope("model_version", "created", {"name": model, "version": "3"})
        resp = post(rx.url, altered, headers)
        assert (resp.status_code, resp.json()["error"]) == (401, "bad_signature")

        # 5. unsigned (MLflow webhook without a secret) -> 401
        unsigned = envelope("model_version", "created", {"name": model, "version": "4"})
        headers = signed_headers(SECRET, unsigned)
        del headers["X-MLflow-Signature"]
        resp = post(rx.url, unsigned, headers)
        assert (resp.status_code, resp.json()["error"]) == (401, "unsigned")

        # 6. stale: correctly signed, but 10 minutes old -> 400
        stale = envelope("model_version", "created", {"name": model, "version": "5"})
        resp = post(rx.url, stale, signed_headers(SECRET, stale, timestamp=int(time.time()) - 600))
        assert (resp.status_code, resp.json()["error"]) == (400, "stale")

        # 7. malformed JSON, correctly signed -> 400
        junk = b'{"entity": "model_version", "action": "created", "data": {"name": '
        resp = post(rx.url, junk, signed_headers(SECRET, junk))
        assert (resp.status_code, resp.json()["error"]) == (400, "malformed")

        # 8. a well-formed MLflow event this receiver does not handle -> 400
        tag = envelope("model_version_tag", "set", {"name": model, "version": "6", "key": "k", "value": "v"})
        resp = post(rx.url, tag, signed_headers(SECRET, tag))
        assert (resp.status_code, resp.json()["error"]) == (400, "unknown_event")

        # 9. missing fields -> 400
        nameless = envelope("model_version", "created", {"version": "7"})
        resp = post(rx.url, nameless, signed_headers(SECRET, nameless))
        assert (resp.status_code, resp.json()["error"]) == (400, "malformed")

        # 10. an alias moved, correctly signed -> 202, model.version.alias_set
        alias = envelope("model_version_alias", "created", {"name": model, "alias": "production", "version": "1"})
        resp = post(rx.url, alias, signed_headers(SECRET, alias))
        assert resp.status_code == 202, resp.text
        assert resp.json()["accepted"] == EVENT_ALIAS_SET

        # Exactly the two valid deliveries reached Prefect, with the local registry's resource labels.
        events = wait_for_events(prefect_server, prefix, 2)
        time.sleep(3)  # anything wrongly emitted would have arrived by now too
        events = model_events(prefect_server, prefix)
        assert sorted((e["event"], e["resource"]["prefect.resource.id"]) for e in events) == [
            (EVENT_ALIAS_SET, f"{prefix}.1"), (EVENT_REGISTERED, f"{prefix}.1")]
        registered = next(e for e in events if e["event"] == EVENT_REGISTERED)
        assert registered["resource"]["modelcompat.model.name"] == model
        assert registered["resource"]["modelcompat.model.version"] == "1"
        assert registered["payload"]["delivery_id"] == good_headers["X-MLflow-Delivery-Id"]
        assert next(e for e in events if e["event"] == EVENT_ALIAS_SET)["payload"]["alias"] == "production"

        health = httpx.get(rx.url.replace("/webhook", "/health"), timeout=5)
        assert health.json() == {"status": "ok"}
    log = rx.log.read_text()
    assert "accepted" in log and "refused" in log  # it does log deliveries …
    for resp in answers:
        assert SECRET not in resp.text and SECRET not in str(resp.headers)
    assert SECRET not in log  # … but never the secret


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MODELCOMPAT_WEBHOOK_SECRET"}
    env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    proc = subprocess.run([sys.executable, "-m", "modelcompat.cli", "webhook", "serve", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "MODELCOMPAT_WEBHOOK_SECRET" in proc.stderr


def test_signature_matches_mlflows_scheme() -> None:
    # v1,<base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}"))> — computed independently here.
    import base64
    import hashlib
    import hmac

    body = b'{"a": 1}'
    expected = base64.b64encode(hmac.new(b"s3cret", b'id-1.1700000000.{"a": 1}', hashlib.sha256).digest()).decode()
    assert sign("s3cret", "id-1", "1700000000", body) == f"v1,{expected}"


def test_delivery_log_survives_a_restart_and_forgets_old_ids(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.jsonl"
    log = DeliveryLog(path, window_s=300)
    assert log.reserve("a") and not log.reserve("a")
    assert not DeliveryLog(path, window_s=300).reserve("a")  # a restarted receiver still refuses the replay
    path.write_text('{"id": "old", "t": 1000}\n')
    assert DeliveryLog(path, window_s=300).reserve("old")  # long stale: the timestamp check refuses it anyway
