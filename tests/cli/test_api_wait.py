"""Waiting for a Prefect API: what is probed, the first-failure notice, the bounded give-up naming the URL."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelcompat.cli.api_wait import ApiUnavailableError, health_url, probe, wait_for_api
from support.servers import free_port


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def start_server() -> Iterator:
    servers: list[ThreadingHTTPServer] = []

    def start(port: int, status: int = 200) -> None:
        handler = type("Handler", (_Health,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_health_endpoint_is_under_the_api_url() -> None:
    assert health_url("http://h:4200/api/") == health_url("http://h:4200/api") == "http://h:4200/api/health"


def test_probe_says_why_an_api_does_not_answer(start_server) -> None:
    port = free_port()
    assert "refused" in probe(f"http://127.0.0.1:{port}/api").lower()
    start_server(port, status=503)
    assert probe(f"http://127.0.0.1:{port}/api") == "HTTP 503"


def test_a_server_that_comes_up_while_waiting_is_used(start_server) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    seen: list[str] = []

    def on_wait(reason: str) -> None:  # nothing listens yet: start the server now, as systemd would
        seen.append(reason)
        start_server(port)

    failures = wait_for_api(url, timeout_s=60, on_wait=on_wait)
    assert failures >= 1 and len(seen) == 1 and "refused" in seen[0].lower()
    assert wait_for_api(url, timeout_s=0, on_wait=seen.append) == 0 and len(seen) == 1  # up: no notice


def test_an_api_that_never_answers_is_one_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    seen: list[str] = []
    with pytest.raises(ApiUnavailableError) as raised:
        wait_for_api(url, timeout_s=0.5, on_wait=seen.append)
    message = str(raised.value)
    assert url in message and "0.5 s" in message and "\n" not in message
    assert len(seen) == 1
