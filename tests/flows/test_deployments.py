"""The served deployments (built in code) and deployments/prefect.yaml (for `prefect deploy`) cannot drift."""
from __future__ import annotations

from modelcompat.errors import InputError
from modelcompat.files.yaml_reader import load_yaml_mapping, strip_lines
from modelcompat.flows import deployments
from modelcompat.settings import REPO_ROOT


def _declared() -> dict:
    # Read as the product reads YAML: its `definitions:` anchors must pass the alias-bomb guard.
    data, _ = strip_lines(load_yaml_mapping(REPO_ROOT / "deployments" / "prefect.yaml", InputError))
    return {d["name"]: d for d in data["deployments"]}


def test_prefect_yaml_matches_the_served_deployments() -> None:
    declared = _declared()
    served = {d.name: d for d in deployments.build_deployments()}
    assert set(declared) == set(served) == {"nightly-matrix", "on-model-registered", "validate-one"}
    for name, spec in declared.items():
        # One module per flow, the same file and function in both (run from the repository root).
        assert spec["entrypoint"] == served[name].entrypoint == f"flows/{name.replace('-', '_')}.py:{name.replace('-', '_')}"
        assert (REPO_ROOT / spec["entrypoint"].split(":")[0]).is_file()
    cron = declared["nightly-matrix"]["schedules"][0]
    schedule = served["nightly-matrix"].schedules[0].schedule
    assert (cron["cron"], cron["timezone"]) == (schedule.cron, schedule.timezone)
    trigger = declared["on-model-registered"]["triggers"][0]
    served_trigger = served["on-model-registered"].triggers[0]
    assert set(trigger["expect"]) == set(served_trigger.expect)
    assert trigger["parameters"] == served_trigger.parameters


def test_the_registry_trigger_templates_name_and_version_from_the_event() -> None:
    trigger = deployments.registry_trigger()
    assert set(trigger.expect) == set(deployments.REGISTRY_EVENTS)
    assert trigger.match.model_dump() == {"prefect.resource.id": "modelcompat.model.*"}
    assert trigger.parameters == {"model_name": "{{ event.resource['modelcompat.model.name'] }}",
                                  "version": "{{ event.resource['modelcompat.model.version'] }}"}
