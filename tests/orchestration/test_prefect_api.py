"""The Prefect API a run talks to: the run's own local server (no heartbeats, takes flow runs back to back)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.parametrize("configured", [None, "60"])
def test_the_runs_own_prefect_server_runs_flows_without_heartbeats_unless_configured(
        configured: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The server a CLI run starts dies with the run: heartbeats (whose thread costs up to 1 s to stop at
    the end of every flow run) are off there, unless the user set a frequency."""
    from prefect.settings import get_current_settings

    from modelcompat.orchestration.prefect_api import prefect_api

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    if configured:
        monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", configured)
    with prefect_api():
        frequency = get_current_settings().flows.heartbeat_frequency
    assert frequency == (int(configured) if configured else None)


# Run in a fresh interpreter: the Prefect client (its API log and events workers) stays in the process.
_BACK_TO_BACK_SCRIPT = textwrap.dedent("""
    import json, logging, os, sqlite3
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from modelcompat.orchestration.prefect_api import prefect_api

    retried = []

    class Retries(logging.Handler):
        def emit(self, record):
            if "retryable" in record.getMessage():  # the client's "Received response with retryable status"
                retried.append(record.getMessage())

    @task(cache_policy=NO_CACHE, persist_result=False)
    def cell(i):
        return i

    @flow(persist_result=False)
    def matrix(n):
        return sum(f.result() for f in [cell.submit(i) for i in range(n)])

    def main():
        import httpx

        handler = Retries()
        with prefect_api() as url:
            # What the server process itself runs with (its own settings, not this client's).
            services = httpx.get(url + "/admin/settings", timeout=30).json()["server"]["services"]
            for _ in range(3):
                client_log = logging.getLogger("prefect.client")  # PREFECT_LOGGING_..._LEVEL=DEBUG: retries show
                if handler not in client_log.handlers:
                    client_log.addHandler(handler)
                assert matrix(40) == sum(range(40))
        db = sqlite3.connect(os.path.join(os.environ["PREFECT_HOME"], "prefect.db"))
        task_runs = db.execute("SELECT flow_run_id, state_type, count(*) FROM task_run GROUP BY 1, 2").fetchall()
        print("RESULT " + json.dumps({"retried": retried, "task_runs": sorted([s, n] for _, s, n in task_runs),
                                      "recorder_batch": services["task_run_recorder"]["batch_size"],
                                      "persister": services["event_persister"]["enabled"]}))

    if __name__ == "__main__":
        main()
""")


def test_the_runs_own_prefect_server_takes_flow_runs_back_to_back_and_records_every_task_run(tmp_path) -> None:
    """Its SQLite file is written by the API and by the server's task-run recorder: the recorder must not lose
    the task runs still queued when the run ends and the server stops, and it must run batched with no event
    persister, the settings that keep it from locking the next flow run out ("database is locked" -> 503 -> a
    ~2 s client retry). How often a lock still happens depends on the machine's load, so it is measured (the
    `orchestration` and `rerun` benchmarks), not asserted: the server's own settings are the causal evidence."""
    script = tmp_path / "back_to_back.py"
    script.write_text(_BACK_TO_BACK_SCRIPT)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_LOGGING_LOGGERS_PREFECT_CLIENT_LEVEL": "DEBUG"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[0].removeprefix("RESULT "))
    assert out["task_runs"] == [["COMPLETED", 40]] * 3
    assert (out["recorder_batch"], out["persister"]) == (100, False)


def test_the_own_servers_settings_yield_to_the_users_environment_and_profile(monkeypatch, tmp_path) -> None:
    """The server is launched before Prefect is imported here: the user's own values (environment, or the
    active profile in PREFECT_HOME/profiles.toml) must still win over ours."""
    from modelcompat.orchestration.prefect_api import own_server_environment

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    for var in ("PREFECT_PROFILE", "PREFECT_PROFILES_PATH", "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE",
                "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"):
        monkeypatch.delenv(var, raising=False)
    env = own_server_environment()
    assert env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"] == "100"
    assert env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] == "false"
    assert env["PREFECT_UI_ENABLED"] == "0"

    (tmp_path / "profiles.toml").write_text(
        'active = "mine"\n[profiles.mine]\nPREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE = 7\n')
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "true")
    env = own_server_environment()
    # Not set by us: the server reads 7 from the profile itself, and the environment's value is passed on.
    assert "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE" not in env
    assert env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] == "true"


def test_a_server_that_cannot_start_is_one_clear_error_not_a_hang(monkeypatch, tmp_path) -> None:
    from modelcompat.orchestration import prefect_api as api

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    # A setting the server cannot parse: it exits while starting, and the run says so at once.
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "not-a-number")
    server = api.launch_own_server()
    assert server is not None
    with pytest.raises(api.PrefectServerError, match="exited with code 1 while starting; run `prefect server start`"):
        server.wait(timeout=120)
    server.stop()


def test_the_wait_for_the_own_server_follows_prefects_own_setting(monkeypatch, tmp_path) -> None:
    """A busy machine may need longer than 120 s: Prefect's setting for its temporary server's start-up is honoured
    from the environment or the active profile, and a value that is not a number is a clear error."""
    from modelcompat.orchestration import prefect_api as api

    setting = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    for var in ("PREFECT_PROFILE", "PREFECT_PROFILES_PATH", setting):
        monkeypatch.delenv(var, raising=False)
    assert api.start_timeout_s() == 120.0
    (tmp_path / "profiles.toml").write_text(f'active = "mine"\n[profiles.mine]\n{setting} = 240\n')
    assert api.start_timeout_s() == 240.0
    monkeypatch.setenv(setting, "300")
    assert api.start_timeout_s() == 300.0
    monkeypatch.setenv(setting, "five minutes")
    with pytest.raises(api.PrefectServerError, match=f"{setting}='five minutes' is not a number of seconds"):
        api.start_timeout_s()


def test_a_server_that_does_not_answer_in_time_names_the_setting(monkeypatch, tmp_path) -> None:
    from modelcompat.orchestration import prefect_api as api

    # A real process that never answers HTTP, standing where the server would: the wait gives up and says how
    # to give the server longer.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    server = api.OwnServer(port=9, process=proc)
    with pytest.raises(api.PrefectServerError, match="did not answer within 1 s.*STARTUP_TIMEOUT_SECONDS=300"):
        server.wait(timeout=1)
    assert proc.poll() is not None  # stopped, not left behind
