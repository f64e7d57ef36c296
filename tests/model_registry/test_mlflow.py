"""The MLflow registry adapter against a real MLflow tracking server (its own venv) on 127.0.0.1.

And the whole MLflow path end to end: MLflow's own signed webhook -> `modelcompat webhook serve` -> Prefect
event -> the served `on-model-registered` deployment -> the verdict written back as tags on the model version.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelcompat.errors import InputError
from modelcompat.model_registry.local import EVENT_ALIAS_SET, EVENT_REGISTERED
from modelcompat.model_registry.mlflow import (
    TAG_CHECKED_AT,
    TAG_PACKAGE,
    TAG_REPORT,
    TAG_RUN_ID,
    TAG_VERDICT,
    MlflowRegistry,
    MlflowRegistryError,
)
from modelcompat.model_registry.selection import open_registry
from modelcompat.settings import matrices_dir
from modelcompat.store import Store
from support.mlflowenv import mlflow_server
from support.servers import free_port, stop_group, wait_until
from support.webhookproc import wait_for_events, webhook_receiver

pytestmark = pytest.mark.server
API = "/api/2.0/mlflow"
# MLflow refuses webhooks to private addresses and plain http unless told otherwise: the receiver is on 127.0.0.1.
# Its webhook list is cached per event (60 s by default): 1 s, so a webhook created by a test is used at once.
WEBHOOK_ENV = {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
               "MLFLOW_WEBHOOK_CACHE_TTL": "1"}


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory):
    """One MLflow tracking server (SQLite backend) for this module: starting one takes 20–40 s."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow"), extra_env=WEBHOOK_ENV) as server:
        yield server.url


def rest(base: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    resp = httpx.request(method, base + API + path, timeout=30, **kwargs)
    assert resp.status_code == 200, f"{method} {path}: {resp.status_code} {resp.text}"
    return resp.json()


def version_tags(base: str, name: str, version: str) -> dict[str, str]:
    mv = rest(base, "GET", "/model-versions/get", params={"name": name, "version": version})["model_version"]
    return {t["key"]: t["value"] for t in mv.get("tags", [])}


def log_package_as_run(base: str, package_dir: Path) -> tuple[str, Path]:
    """A run whose artifacts hold the package (as `mlflow.log_artifacts` would): (run id, package folder)."""
    exp = rest(base, "POST", "/experiments/create", json={"name": f"modelcompat-{uuid.uuid4().hex[:8]}"})
    run = rest(base, "POST", "/runs/create", json={"experiment_id": exp["experiment_id"]})["run"]["info"]
    artifacts = Path(run["artifact_uri"].removeprefix("file://"))
    assert artifacts.is_absolute(), run["artifact_uri"]
    target = artifacts / "modelcompat-package"
    shutil.copytree(package_dir, target)
    return run["run_id"], target


def create_version(base: str, name: str, source: str, run_id: str | None = None,
                   tags: dict[str, str] | None = None) -> str:
    body: dict[str, Any] = {"name": name, "source": source,
                            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
    if run_id:
        body["run_id"] = run_id
    return str(rest(base, "POST", "/model-versions/create", json=body)["model_version"]["version"])


def test_adapter_resolves_versions_and_aliases_and_writes_the_verdict_back(mlflow_url: str, demo_package) -> None:
    base = mlflow_url
    name = "demo-mlp"
    rest(base, "POST", "/registered-models/create", json={"name": name})
    run_id, logged = log_package_as_run(base, demo_package.root)
    # v1: the version's source is the package folder (logged as the run's artifacts)
    v1 = create_version(base, name, str(logged), run_id=run_id)
    # v2: the source is somewhere the checks cannot read; the tag says where the package is
    v2 = create_version(base, name, "s3://models/demo-mlp/2", tags={TAG_PACKAGE: str(demo_package.root)})
    # v3: neither
    v3 = create_version(base, name, "s3://models/demo-mlp/3")
    assert (v1, v2, v3) == ("1", "2", "3")

    registry = open_registry(f"mlflow+{base}")
    assert isinstance(registry, MlflowRegistry) and registry.tracking_uri == base

    entry = registry.version(name, "1")
    assert (entry["version"], entry["package"]) == ("1", str(logged))
    assert registry.version(name, "2")["package"] == str(demo_package.root)
    with pytest.raises(InputError) as err:
        registry.version(name, "3")
    assert TAG_PACKAGE in err.value.render()
    with pytest.raises(InputError):
        registry.version(name, "99")
    with pytest.raises(InputError):
        registry.version("no-such-model", "1")
    assert registry.latest(name) == "3"
    assert name in registry.models()

    # aliases: set through MLflow's REST API, resolved by the adapter
    rest(base, "POST", "/registered-models/alias", json={"name": name, "alias": "production", "version": "1"})
    assert registry.version(name, "production")["version"] == "1"
    assert registry.model(name)["aliases"] == {"production": "1"}
    registry.set_alias(name, "candidate", "2")
    assert registry.version(name, "candidate")["version"] == "2"

    # the verdict goes back as tags on the version, visible to anyone reading MLflow
    written: list[str] = []
    real_call = registry._call

    def recording_call(method: str, path: str, **kwargs: Any) -> Any:
        if path == "/model-versions/set-tag":
            written.append(kwargs["body"]["key"])
        return real_call(method, path, **kwargs)

    registry._call = recording_call  # type: ignore[method-assign]
    registry.record_verdict(name, "1", verdict="fail", run_id="run-abc",
                            report="modelcompat report run-abc --format html")
    # one tag per call: the verdict goes last, so a poller that sees it also sees its run id and report
    assert written[-1] == TAG_VERDICT and {TAG_RUN_ID, TAG_REPORT, TAG_CHECKED_AT} <= set(written[:-1])
    tags = version_tags(base, name, "1")
    assert tags[TAG_VERDICT] == "fail" and tags[TAG_RUN_ID] == "run-abc"
    assert tags[TAG_REPORT] == "modelcompat report run-abc --format html"
    assert TAG_CHECKED_AT in tags
    assert registry.version(name, "production")["verdict"] == "fail"
    assert TAG_VERDICT not in version_tags(base, name, "2")

    # no server there: a clear error, not a traceback from deep inside httpx
    with pytest.raises(MlflowRegistryError, match="unreachable"):
        MlflowRegistry(f"http://127.0.0.1:{free_port()}", timeout=3).latest(name)


def test_mlflow_webhook_triggers_the_check_and_the_verdict_lands_on_the_version(
        mlflow_url: str, prefect_server: str, demo_package, tmp_path: Path) -> None:
    secret = "whsec-" + uuid.uuid4().hex
    with webhook_receiver(tmp_path, secret, prefect_server) as rx:
        base = mlflow_url
        env = {**os.environ, "PREFECT_API_URL": prefect_server, "MODELCOMPAT_HOME": str(tmp_path / "home"),
               "MODELCOMPAT_REGISTRY": f"mlflow+{base}", "MODELCOMPAT_MATRIX": str(matrices_dir() / "smoke.yaml"),
               "MODELCOMPAT_WORKERS": "1", "PREFECT_LOGGING_LEVEL": "WARNING", "DASK_LOGGING__DISTRIBUTED": "warning"}
        log = open(tmp_path / "serve.log", "w")
        serve = subprocess.Popen([sys.executable, "-m", "modelcompat.cli", "serve"], env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def deployments_up() -> bool:
                resp = httpx.post(f"{prefect_server}/deployments/filter", json={}, timeout=10)
                return resp.status_code == 200 and "on-model-registered" in {d["name"] for d in resp.json()}
            wait_until(deployments_up, 120, "the served deployments")

            # MLflow's own webhook, signed with the shared secret
            hook = rest(base, "POST", "/webhooks", json={
                "name": "modelcompat", "url": rx.url, "secret": secret,
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"},  # proto enum names in REST JSON
                           {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}]})["webhook"]
            assert "secret" not in hook
            test = rest(base, "POST", f"/webhooks/{hook['webhook_id']}/test", json={
                "event": {"entity": "MODEL_VERSION_TAG", "action": "SET"}})["result"]
            assert test["response_status"] == 400 and "unknown_event" in test["response_body"]
            time.sleep(3)  # the served deployment's trigger reaches the event service

            name = f"mlf-{uuid.uuid4().hex[:6]}"
            rest(base, "POST", "/registered-models/create", json={"name": name})
            run_id, logged = log_package_as_run(base, demo_package.root)
            version = create_version(base, name, str(logged), run_id=run_id)
            events = wait_for_events(prefect_server, f"modelcompat.model.{name}.", 1)
            assert [e["event"] for e in events] == [EVENT_REGISTERED]
            assert events[0]["resource"]["prefect.resource.id"] == f"modelcompat.model.{name}.{version}"

            tags = wait_until(lambda: (t := version_tags(base, name, version)).get(TAG_VERDICT) and t, 300,
                         "the verdict tags on the MLflow model version", interval=3)
            assert tags[TAG_VERDICT] == "pass"
            assert tags[TAG_REPORT] == f"modelcompat report {tags[TAG_RUN_ID]} --format html"
            run = Store(str(tmp_path / "home" / "store")).runs().set_index("run_id").loc[tags[TAG_RUN_ID]]
            assert run["trigger"] == "registry_event"

            # an alias moved in MLflow arrives as model.version.alias_set
            rest(base, "POST", "/registered-models/alias", json={"name": name, "alias": "production",
                                                                 "version": version})
            events = wait_for_events(prefect_server, f"modelcompat.model.{name}.", 2)
            assert any(e["event"] == EVENT_ALIAS_SET and e["payload"]["alias"] == "production" for e in events)
        finally:
            stop_group(serve)
            log.close()
    assert secret not in rx.log.read_text()
    assert "accepted: model.version.registered" in rx.log.read_text()


def test_the_promotion_gate_holds_on_the_mlflow_adapter(mlflow_url: str, demo_package, tmp_path: Path) -> None:
    from modelcompat.model_registry.promotion_gate import PromotionRefused, set_alias_gated
    from modelcompat.store import audit

    name = f"gate-{uuid.uuid4().hex[:6]}"
    rest(mlflow_url, "POST", "/registered-models/create", json={"name": name})
    version = create_version(mlflow_url, name, "s3://models/gate/1", tags={TAG_PACKAGE: str(demo_package.root)})
    registry, store = open_registry(f"mlflow+{mlflow_url}"), Store(tmp_path / "store")
    with pytest.raises(PromotionRefused, match="never been checked"):
        set_alias_gated(registry, store, name, "production", version)
    assert registry.model(name)["aliases"] == {}
    registry.record_verdict(name, version, verdict="pass", run_id="r-9")
    record = set_alias_gated(registry, store, name, "production", version)
    assert registry.model(name)["aliases"] == {"production": version}  # read back from MLflow
    assert [r["action"] for r in audit.records(store)] == ["alias.refused", "alias.set"] and record["seq"] == 1
