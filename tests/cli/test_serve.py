"""`modelcompat serve` started before its Prefect server (as systemd or Kubernetes start them) waits for it and
serves; with no server it gives up with one line naming the URL. Also the refusals of serve and webhook serve."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support.servers import free_port, stop_group, wait_until

CLI = [sys.executable, "-m", "modelcompat.cli"]
DEPLOYMENTS = {"nightly-matrix", "on-model-registered", "validate-one"}


def _env(tmp_path: Path, api_url: str) -> dict[str, str]:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "MODELCOMPAT_HOME": str(tmp_path / "home"), "PREFECT_LOGGING_LEVEL": "WARNING", "COLUMNS": "80",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    return env


def _deployments(api_url: str) -> set[str]:
    try:
        resp = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=10)
    except httpx.TransportError:
        return set()
    return {d["name"] for d in resp.json()} if resp.status_code == 200 else set()


@pytest.mark.server
def test_serve_waits_for_a_server_started_after_it_then_registers_its_deployments(tmp_path: Path) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = _env(tmp_path, api_url)
    serve_log = tmp_path / "serve.log"
    with open(serve_log, "w") as log:
        serve = subprocess.Popen([*CLI, "serve", "--api-timeout", "600"], env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Evidence that serve is waiting (and for what) before any server exists.
        wait_until(lambda: f"waiting for the Prefect API at {api_url}" in serve_log.read_text(), 120,
                   "serve to say what it waits for", interval=0.5)
        assert serve.poll() is None, serve_log.read_text()
        assert not _deployments(api_url)  # nothing listens yet
        server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        server_env["PREFECT_HOME"] = str(tmp_path / "server-home")
        # `modelcompat server` is `prefect server start --host 127.0.0.1 --port PORT`
        server_log = tmp_path / "server.log"
        with open(server_log, "w") as log:
            server = subprocess.Popen([*CLI, "server", "--port", str(port)], env=server_env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: DEPLOYMENTS <= _deployments(api_url), 600, "serve's deployments in the API")
            assert f"PREFECT_API_URL={api_url}" in server_log.read_text()
            text = serve_log.read_text()
            assert text.index(f"waiting for the Prefect API at {api_url}") < text.index(
                f"the Prefect API at {api_url} answers")
            assert serve.poll() is None and "Traceback" not in text and "error:" not in text
        finally:
            stop_group(server)
    finally:
        stop_group(serve)


def test_serve_gives_up_on_an_api_that_never_answers_with_one_line(tmp_path: Path) -> None:
    api_url = f"http://127.0.0.1:{free_port()}/api"  # nobody listens there
    proc = subprocess.run([*CLI, "serve", "--api-timeout", "2"], env=_env(tmp_path, api_url), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 3
    assert f"waiting for the Prefect API at {api_url}" in proc.stdout
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and api_url in errors[0]
    assert "Traceback" not in proc.stdout + proc.stderr and "ConnectError" not in proc.stdout + proc.stderr


def test_serve_without_prefect_api_url_is_exit_2(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    code, _, err = invoke("serve")
    assert code == 2 and "PREFECT_API_URL is not set" in err and "modelcompat server" in err


def test_webhook_serve_refuses_unsigned_webhooks_and_a_missing_api(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELCOMPAT_WEBHOOK_SECRET", raising=False)
    code, _, err = invoke("webhook", "serve")
    assert code == 2 and "refusing to accept unsigned webhooks" in err
    monkeypatch.setenv("MODELCOMPAT_WEBHOOK_SECRET", "s3cret")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    code, _, err = invoke("webhook", "serve")
    assert code == 2 and "the events would reach no server" in err
