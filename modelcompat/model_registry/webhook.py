"""A small receiver for MLflow model registry webhooks (MLflow 3.x) that turns them into Prefect events.

MLflow POSTs a JSON envelope `{"entity", "action", "timestamp", "data"}` with the headers
`X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (unix seconds) and, when the webhook has a secret,
`X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{body}")>`.

Handled events (anything else is answered 400):
- `model_version.created`       -> Prefect `model.version.registered` on `model_resource(name, version)`
- `model_version_alias.created` -> Prefect `model.version.alias_set`  on `model_resource(name, version)`,
                                   payload `{"alias": …}`
(the same events `modelcompat registry register` / `alias set` emit, so `on-model-registered` starts.)

Answers (JSON `{"error": …}` or `{"accepted": …}`):
202 accepted · 401 unsigned or wrongly signed · 400 stale timestamp (older or newer than 5 minutes), bad
headers, malformed JSON, unknown event · 409 a delivery id already accepted (replay) · 413 body too large ·
503 the Prefect event could not be emitted (the delivery id is released so MLflow's retry can succeed).

The shared secret comes from `MODELCOMPAT_WEBHOOK_SECRET`; it is never logged nor echoed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import signal
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from modelcompat import settings
from modelcompat.files.atomic import write_text
from modelcompat.model_registry.local import (
    EVENT_ALIAS_SET,
    EVENT_REGISTERED,
    model_resource,
)

SECRET_ENV = settings.WEBHOOK_SECRET_ENV
SIGNATURE_HEADER = "X-MLflow-Signature"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
SIGNATURE_VERSION = "v1"
TOLERANCE_S = 300
MAX_BODY = 1 << 20
PATHS = ("/", "/webhook", "/webhooks/mlflow")

log = logging.getLogger("modelcompat.model_registry.webhook")

Emitter = Callable[[str, dict[str, str], dict[str, Any]], None]


class WebhookReject(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` value MLflow sends: `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`."""
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def _signature_ok(secret: str, header: str, delivery_id: str, timestamp: str, body: bytes) -> bool:
    expected = sign(secret, delivery_id, timestamp, body).split(",", 1)[1].encode()
    ok = False
    for part in header.split():  # several space-separated signatures are allowed (secret rotation)
        version, _, value = part.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value.encode(), expected):
            ok = True
    return ok


class DeliveryLog:
    """Delivery ids accepted within the tolerance window: in memory, bounded, optionally kept in a file.

    A replay older than the window is already refused as stale, so ids older than it can be forgotten.
    """

    def __init__(self, path: Path | None = None, *, window_s: int = TOLERANCE_S, max_ids: int = 100_000) -> None:
        self.path, self.window_s, self.max_ids = path, window_s, max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        if path is not None and path.exists():
            now = time.time()
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    if now - float(rec["t"]) <= 2 * self.window_s:
                        self._seen[str(rec["id"])] = float(rec["t"])
                except (ValueError, KeyError, TypeError):
                    continue
            self._rewrite()

    def _prune(self, now: float) -> None:
        while self._seen and (len(self._seen) > self.max_ids
                              or now - next(iter(self._seen.values())) > 2 * self.window_s):
            self._seen.popitem(last=False)

    def _rewrite(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Durable: after a crash the ids seen so far must still refuse their replays.
        write_text(self.path, "".join(json.dumps({"id": k, "t": t}) + "\n" for k, t in self._seen.items()))

    def reserve(self, delivery_id: str) -> bool:
        """Record the id; False when it was already seen (a replay)."""
        with self._lock:
            now = time.time()
            self._prune(now)
            if delivery_id in self._seen:
                return False
            self._seen[delivery_id] = now
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a") as fh:
                    fh.write(json.dumps({"id": delivery_id, "t": now}) + "\n")
                if len(self._seen) % 1000 == 0:
                    self._rewrite()
            return True

    def release(self, delivery_id: str) -> None:
        with self._lock:
            if self._seen.pop(delivery_id, None) is not None:
                self._rewrite()


def prefect_emitter(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
    from prefect.events import emit_event

    if emit_event(event=event, resource=resource, payload=payload) is None:
        raise RuntimeError("Prefect did not accept the event (is PREFECT_API_URL set?)")


def to_prefect_event(envelope: Any) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(event name, resource, payload) for a handled MLflow webhook envelope; WebhookReject otherwise."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
        raise WebhookReject(400, "malformed", "expected a JSON object with entity, action and data")
    event = f"{envelope.get('entity')}.{envelope.get('action')}"
    data = envelope["data"]
    name, version = data.get("name"), data.get("version")
    if event not in ("model_version.created", "model_version_alias.created"):
        raise WebhookReject(400, "unknown_event", f"event {event!r} is not handled; subscribe this webhook "
                                                  "to model_version.created and model_version_alias.created")
    if not isinstance(name, str) or not name or version in (None, ""):
        raise WebhookReject(400, "malformed", f"{event}: data.name and data.version are required")
    payload: dict[str, Any] = {"source": "mlflow", "mlflow_event": event}
    if event == "model_version.created":
        return EVENT_REGISTERED, model_resource(name, str(version)), payload
    alias = data.get("alias")
    if not isinstance(alias, str) or not alias:
        raise WebhookReject(400, "malformed", f"{event}: data.alias is required")
    return EVENT_ALIAS_SET, model_resource(name, str(version)), {**payload, "alias": alias}


class Receiver:
    """Verifies and handles one delivery (independent of the HTTP server, so it is easy to reuse)."""

    def __init__(self, secret: str, *, emit: Emitter = prefect_emitter, deliveries: DeliveryLog | None = None,
                 tolerance_s: int = TOLERANCE_S, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError(f"a webhook secret is required ({SECRET_ENV})")
        self._secret = secret
        self.emit, self.tolerance_s, self.clock = emit, tolerance_s, clock
        self.deliveries = deliveries or DeliveryLog(window_s=tolerance_s)

    def __repr__(self) -> str:  # never shows the secret
        return f"Receiver(tolerance_s={self.tolerance_s})"

    def handle(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return self._handle(headers, body)
        except WebhookReject as rej:
            return rej.status, {"error": rej.error, "detail": rej.detail}
        except Exception as exc:  # a bug here: answer, without details, and let MLflow retry
            log.error("delivery %s: internal error %s", headers.get(DELIVERY_ID_HEADER) or "-", type(exc).__name__)
            return 500, {"error": "internal", "detail": "the receiver failed; see its log"}

    def _handle(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        signature = headers.get(SIGNATURE_HEADER)
        delivery_id = headers.get(DELIVERY_ID_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not signature:
            raise WebhookReject(401, "unsigned", f"missing {SIGNATURE_HEADER}: configure the MLflow webhook "
                                                 "with the shared secret")
        if not delivery_id or not timestamp:
            raise WebhookReject(401, "unsigned", f"missing {DELIVERY_ID_HEADER} or {TIMESTAMP_HEADER}")
        if not _signature_ok(self._secret, signature, delivery_id, timestamp, body):
            raise WebhookReject(401, "bad_signature", "the signature does not match this delivery "
                                                      "(wrong secret, or the body was altered)")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise WebhookReject(400, "bad_timestamp", f"{TIMESTAMP_HEADER} is not unix seconds") from None
        age = self.clock() - sent_at
        if abs(age) > self.tolerance_s:
            raise WebhookReject(400, "stale", f"timestamp is {age:.0f} s off (more than {self.tolerance_s} s): "
                                              "refused as stale (check both clocks)")
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookReject(400, "malformed", "the body is not valid JSON") from None
        event, resource, payload = to_prefect_event(envelope)
        if not self.deliveries.reserve(delivery_id):
            raise WebhookReject(409, "replayed", f"delivery {delivery_id} was already accepted")
        try:
            self.emit(event, resource, {**payload, "delivery_id": delivery_id})
        except Exception as exc:  # let MLflow's retry (same delivery id) succeed later
            self.deliveries.release(delivery_id)
            log.error("delivery %s: could not emit %s: %s", delivery_id, event, type(exc).__name__)
            raise WebhookReject(503, "emit_failed", f"could not emit the Prefect event: {type(exc).__name__}") from None
        log.info("delivery %s accepted: %s %s", delivery_id, event, resource["prefect.resource.id"])
        return 202, {"accepted": event, "resource": resource["prefect.resource.id"], "delivery_id": delivery_id}


class _Handler(BaseHTTPRequestHandler):
    server_version = "modelcompat-webhook"
    sys_version = ""
    receiver: Receiver

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?")[0] == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": "not_found", "detail": "POST MLflow webhooks to /webhook"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?")[0] not in PATHS:
            self._send(404, {"error": "not_found", "detail": "POST MLflow webhooks to /webhook"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(413 if length > MAX_BODY else 400,
                       {"error": "bad_length", "detail": f"Content-Length must be 0..{MAX_BODY}"})
            return
        body = self.rfile.read(length)
        status, answer = self.receiver.handle(self.headers, body)
        if status >= 400:
            log.warning("delivery %s refused: %d %s", self.headers.get(DELIVERY_ID_HEADER) or "-", status,
                        answer.get("error"))
        self._send(status, answer)

    def log_message(self, format: str, *args: Any) -> None:  # request line only, never headers or bodies
        log.debug("%s %s", self.address_string(), format % args)


def make_server(receiver: Receiver, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"receiver": receiver})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(host: str = "127.0.0.1", port: int = 8765, *, secret: str | None = None,
          deliveries_file: Path | None = None) -> None:
    """Run the receiver until interrupted (secret from `MODELCOMPAT_WEBHOOK_SECRET` unless given)."""
    secret = secret if secret is not None else settings.webhook_secret()
    receiver = Receiver(secret, deliveries=DeliveryLog(deliveries_file))
    server = make_server(receiver, host, port)
    log.info("MLflow webhook receiver on http://%s:%d/webhook", host, server.server_address[1])

    def _stop(signum: int, frame: Any) -> None:  # SIGTERM ends like Ctrl-C, so queued events are flushed at exit
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
