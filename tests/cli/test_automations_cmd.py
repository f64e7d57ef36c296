"""`modelcompat automations apply`: bad input is refused before any server is asked (exit 2, the field and fix).
Applying to a real server and the webhook it calls: tests/orchestration/test_automations.py."""
from __future__ import annotations

import pytest

from modelcompat.cli.automations import automations_app


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--webhook-url", "http://127.0.0.1:9/hook"], {"PREFECT_API_URL": ""}, "PREFECT_API_URL is not set"),
    (["--webhook-url", "hooks.example.org/x"], {"PREFECT_API_URL": "http://127.0.0.1:9/api"},
     "--webhook-url: 'hooks.example.org/x' is not an http(s) URL"),
    (["--webhook-url", "http://127.0.0.1:9/hook", "--header", "NoEquals"],
     {"PREFECT_API_URL": "http://127.0.0.1:9/api"},
     "--header: header 'NoEquals' is not NAME=VALUE"),
])
def test_bad_input_exits_2_with_the_field(cli, args, env, says) -> None:
    proc = cli("automations", "apply", *args, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr and "fix:" in proc.stderr and "Traceback" not in proc.stderr


def test_help_says_what_it_creates(cli) -> None:
    assert [c.name for c in automations_app.registered_commands] == ["apply"]
    proc = cli("automations", "apply", "--help")
    assert proc.returncode == 0 and "fail or regressed" in proc.stdout and "--webhook-url" in proc.stdout
