"""The REST calls a recorded run makes, against a real Prefect server and a port nothing listens on (the whole
recorded run through the CLI: tests/flows/test_check_matrix.py)."""
from __future__ import annotations

import logging

import pytest

from modelcompat.orchestration.recorded_run import FLOW_NAME, PrefectApiError, PrefectRest, _recorded
from support.servers import free_port


def test_it_creates_the_check_matrix_flow_and_a_run_of_it(prefect_server: str) -> None:
    rest = PrefectRest(prefect_server + "/")
    flow = rest.post("/flows/", {"name": FLOW_NAME})
    assert rest.post("/flows/", {"name": FLOW_NAME})["id"] == flow["id"]  # the same flow every time
    run = rest.post("/flow_runs/", {"flow_id": flow["id"], "name": "check x on y", "parameters": {"run_id": "r1"},
                                    "state": {"type": "RUNNING", "name": "Running"}})
    assert run["state_type"] == "RUNNING" and run["parameters"] == {"run_id": "r1"}
    done = rest.post(f"/flow_runs/{run['id']}/set_state", {"state": {"type": "COMPLETED", "name": "Completed"},
                                                            "force": True})
    assert done["status"] == "ACCEPT"


def test_a_refusal_names_the_api_the_request_and_the_answer(prefect_server: str) -> None:
    with pytest.raises(PrefectApiError) as refused:
        PrefectRest(prefect_server).post("/flow_runs/", {"flow_id": "not-a-uuid"})
    assert prefect_server in str(refused.value) and "POST /flow_runs/" in str(refused.value)
    assert "answered 422" in str(refused.value)


def test_an_api_that_does_not_answer_says_so_and_how_to_fix_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    with pytest.raises(PrefectApiError, match="did not answer POST /flows/.*PREFECT_API_URL"):
        PrefectRest(url).post("/flows/", {"name": FLOW_NAME})


def test_once_the_flow_run_exists_a_failing_record_is_a_warning_not_a_lost_run(caplog: pytest.LogCaptureFixture) -> None:
    rest = PrefectRest(f"http://127.0.0.1:{free_port()}/api")
    with caplog.at_level(logging.WARNING):
        assert _recorded(rest.post, "/artifacts/", {"key": "k"}) is None
    assert "record on the server is incomplete" in caplog.text and "POST /artifacts/" in caplog.text


def test_a_busy_server_is_retried_as_prefects_client_does() -> None:
    """A real HTTP server on 127.0.0.1 that answers 503 ("database is locked") twice, then 201: the post lands."""
    import http.server
    import json as _json
    import threading

    answers = [503, 503, 201]
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            seen.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            code = answers.pop(0)
            body = _json.dumps({"id": "f1"} if code == 201 else {"detail": "database is locked"}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = PrefectRest(f"http://127.0.0.1:{server.server_port}/api").post("/flows/", {"name": FLOW_NAME})
    finally:
        server.shutdown()
    assert got == {"id": "f1"} and seen == ["/api/flows/"] * 3
