"""Validator discovery through the `modelcompat.validators` entry points, checked when registered.

Like pluggy, a malformed validator is refused at load with its name, not at call time. A validator
that fails to import is kept as a `LoadFailure`: the harness turns it into an `error` report (never
a silent skip). `MODELCOMPAT_DISABLE_VALIDATORS=a,b` blocks validators by name.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import entry_points

from pydantic import BaseModel

from modelcompat import settings
from modelcompat.errors import InputError
from modelcompat.validators.base import Validator

GROUP = "modelcompat.validators"
BLOCKLIST_ENV = settings.DISABLE_VALIDATORS_ENV


@dataclass(frozen=True)
class LoadFailure:
    """A declared validator that could not be loaded or failed its registration checks."""

    name: str
    target: str
    reason: str


def check_validator_class(name: str, obj: object) -> str | None:
    """Why `obj` is not a valid validator registered as `name`, or None when it is."""
    if not (inspect.isclass(obj) and issubclass(obj, Validator)):
        return f"{obj!r} is not a subclass of modelcompat.validators.Validator"
    if inspect.isabstract(obj):
        return f"{obj.__name__} does not implement validate()"
    for attr in ("name", "version", "description", "inputs"):
        if not hasattr(obj, attr):
            return f"{obj.__name__} has no class attribute {attr!r}"
    if obj.name != name:
        return f"entry point is named {name!r} but {obj.__name__}.name is {obj.name!r}"
    params = obj.Params
    if not (inspect.isclass(params) and issubclass(params, BaseModel)):
        return f"{obj.__name__}.Params must be a pydantic model"
    if params.model_config.get("extra") != "forbid":
        return f"{obj.__name__}.Params must refuse unknown keys (model_config extra='forbid')"
    if obj.gate and obj.needs_probe:
        return f"{obj.__name__} is a gate, which runs before the runtime exists: set needs_probe = False"
    return None


class Registry:
    """The installed validators, by name, in a stable order."""

    def __init__(self, validators: dict[str, type[Validator]], failures: dict[str, LoadFailure]) -> None:
        self.validators = dict(sorted(validators.items()))
        self.failures = dict(sorted(failures.items()))

    @classmethod
    def discover(cls) -> "Registry":
        blocked = settings.disabled_validators()
        found: dict[str, type[Validator]] = {}
        failures: dict[str, LoadFailure] = {}
        for ep in entry_points(group=GROUP):
            if ep.name in blocked:
                continue
            if ep.name in found or ep.name in failures:
                failures[ep.name] = LoadFailure(ep.name, ep.value, "registered twice by installed packages")
                found.pop(ep.name, None)
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # any import-time error of third-party code becomes a report
                failures[ep.name] = LoadFailure(ep.name, ep.value, f"import failed: {type(exc).__name__}: {exc}")
                continue
            problem = check_validator_class(ep.name, obj)
            if problem:
                failures[ep.name] = LoadFailure(ep.name, ep.value, problem)
            else:
                found[ep.name] = obj
        return cls(found, failures)

    @property
    def names(self) -> list[str]:
        return sorted([*self.validators, *self.failures])

    def select(self, names: list[str] | None) -> list[str]:
        """Validate a `--validators` selection (None = all); unknown names are an input error."""
        if not names:
            return self.names
        unknown = [n for n in names if n not in self.validators and n not in self.failures]
        if unknown:
            raise InputError(
                f"unknown validator {', '.join(map(repr, unknown))}",
                field="--validators",
                fix=f"choose from: {', '.join(self.names)} (see `modelcompat validators`)",
            )
        return [n for n in self.names if n in names]
