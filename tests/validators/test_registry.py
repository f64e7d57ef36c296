"""Entry-point discovery and the registration checks (pluggy-style: refuse at load, by name)."""
from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from modelcompat.errors import InputError
from modelcompat.validators import Params, Validator
from modelcompat.validators.registry import Registry, check_validator_class
from support.pkgvariants import HOST_ORT, TORCHSCRIPT

EXPECTED = {"integrity", "loadability", "io_contract", "numerical_parity", "opset_support", "operator_coverage",
            "unsafe_serialization", "determinism", "latency", "environment_parity", "data_contract",
            "hardware_support", "edge_footprint"}


def test_discovers_the_installed_validators() -> None:
    registry = Registry.discover()
    assert EXPECTED <= set(registry.validators)
    assert not registry.failures


DISCOVERED = sorted(Registry.discover().validators)
GATES = {"unsafe_serialization"}  # the static scan that must pass before any check loads the artifact


@pytest.mark.parametrize("name", DISCOVERED)
def test_every_discovered_validator_honours_the_contract(name: str, demo_package) -> None:
    cls = Registry.discover().validators[name]
    assert check_validator_class(name, cls) is None
    assert cls.name == name and cls.version and cls.description and cls.inputs
    assert cls.Params.model_config.get("extra") == "forbid"
    with pytest.raises(ValidationError, match="no_such_param"):
        cls.Params.model_validate({"no_such_param": 1})
    cls.Params.model_validate({})  # every param has a default: a run needs no params
    assert isinstance(cls.gate, bool) and (cls.gate is (name in GATES))
    assert not (cls.gate and cls.needs_probe)  # a gate runs before the cell's runtime exists
    # applies_to answers every demo cell with a reason (str) or None, and never raises
    for cell in (HOST_ORT, TORCHSCRIPT):
        reason = cls().applies_to(cell, demo_package)
        assert reason is None or (isinstance(reason, str) and reason)


def test_the_expected_validators_are_among_the_discovered() -> None:
    assert EXPECTED <= set(DISCOVERED)


def test_blocklist_hides_a_validator(monkeypatch) -> None:
    monkeypatch.setenv("MODELCOMPAT_DISABLE_VALIDATORS", "integrity")
    registry = Registry.discover()
    assert "integrity" not in registry.names
    assert "loadability" in registry.names


def test_unknown_selection_lists_the_valid_names() -> None:
    with pytest.raises(InputError) as info:
        Registry.discover().select(["loadabilty"])
    assert info.value.field == "--validators"
    assert "loadability" in info.value.fix


class _Loose(BaseModel):
    x: int = 1


class _Good(Validator):
    name = "good"
    version = "1"
    description = "d"
    inputs = ("artifact",)

    def validate(self, ctx, params):  # pragma: no cover - never run
        raise NotImplementedError


class _WrongName(_Good):
    name = "other"


class _LooseParams(_Good):
    Params = _Loose


class _ProbeGate(_Good):
    gate = True  # needs_probe stays True: a gate that would need the runtime before it exists


class _Abstract(Validator):
    name = "abstract"
    version = "1"
    description = "d"
    inputs = ()


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        (object, "not a subclass"),
        (_WrongName, "named 'good'"),
        (_LooseParams, "extra='forbid'"),
        (_Abstract, "does not implement validate"),
        (_ProbeGate, "needs_probe = False"),
    ],
)
def test_registration_refuses_malformed_validators(obj, needle) -> None:
    name = "abstract" if obj is _Abstract else "good"
    problem = check_validator_class(name, obj)
    assert problem is not None and needle in problem


def test_a_well_formed_validator_passes_registration() -> None:
    assert check_validator_class("good", _Good) is None
    assert issubclass(_Good.Params, Params)
