"""The promotion gate on the local folder registry (the MLflow adapter: tests/model_registry/test_mlflow.py): an
alias moves only to a version that passed, an override needs a reason, and every decision is in the audit trail."""
from __future__ import annotations

import pytest

from modelcompat.errors import InputError
from modelcompat.model_registry.local import LocalRegistry
from modelcompat.model_registry.promotion_gate import PromotionRefused, set_alias_gated
from modelcompat.store import Store, audit


@pytest.fixture
def registered(tmp_path, demo_package):
    registry = LocalRegistry(tmp_path / "registry")
    entry = registry.register(demo_package.root)
    return registry, Store(tmp_path / "store"), entry["name"], entry["version"]


@pytest.mark.parametrize("verdict", [None, "fail", "regressed", "error"])
def test_a_version_that_did_not_pass_is_refused_and_the_refusal_recorded(registered, verdict) -> None:
    registry, store, name, version = registered
    if verdict:
        registry.record_verdict(name, version, verdict=verdict, run_id="r-1")
    with pytest.raises(PromotionRefused) as refused:
        set_alias_gated(registry, store, name, "production", version, who="alice")
    said = refused.value.render()
    assert f"{name}@production was not moved to version {version}" in said and "--override --reason" in said
    assert (f"its latest verdict is {verdict}" if verdict else "it has never been checked") in said
    assert "production" not in registry.model(name)["aliases"]
    (record,) = audit.records(store)
    assert record["action"] == "alias.refused" and record["who"] == "alice"
    assert record["subject"]["verdict"] == verdict and record["subject"]["alias"] == "production"


@pytest.mark.parametrize("verdict", ["pass", "warn"])
def test_a_version_that_passed_moves_and_is_recorded(registered, verdict) -> None:
    registry, store, name, version = registered
    registry.record_verdict(name, version, verdict=verdict, run_id="r-2")
    record = set_alias_gated(registry, store, name, "production", version, who="bob")
    assert registry.model(name)["aliases"]["production"] == version
    assert record["action"] == "alias.set" and record["subject"]["run_id"] == "r-2"
    assert audit.records(store) == [record] and audit.verify(store).ok


def test_an_override_needs_a_reason_and_is_recorded_with_it(registered) -> None:
    registry, store, name, version = registered
    registry.record_verdict(name, version, verdict="fail", run_id="r-3")
    with pytest.raises(InputError, match="an override must say why"):
        set_alias_gated(registry, store, name, "production", version, override=True, reason="  ")
    assert audit.records(store) == [] and "production" not in registry.model(name)["aliases"]
    record = set_alias_gated(registry, store, name, "production", version, override=True,
                             reason="INC-42: hotfix, parity fail is a known fp16 tail", who="carol")
    assert registry.model(name)["aliases"]["production"] == version
    assert record["action"] == "alias.override" and record["reason"].startswith("INC-42")
    assert record["subject"]["verdict"] == "fail" and record["subject"]["previous"] is None
