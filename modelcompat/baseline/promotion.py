"""Baselines: pointers (model × cell × validator → the run holding the accepted report), moved by promotions.

Each promotion is one immutable JSON file, written to a temporary name and renamed::

    baselines/<quoted model name>/<promoted_at>-<token>.json

The current pointers are the promotions replayed in order (``promoted_at``, then file name): a later
promotion overrides the keys it names and keeps the others. Concurrent promotions never overwrite one
another (each has its own file; the order between them is still total), a reader never sees half a
promotion, and the files are the history: who promoted what, when, from which run, by which rule.
"""
from __future__ import annotations

import fnmatch
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from modelcompat import settings
from modelcompat.errors import InputError
from modelcompat.results.report import Report, Status
from modelcompat.store import RunNotFoundError, Store, audit, reports_from_frame

BASELINE_SCHEMA_VERSION = 1
RULES = ("last-passing",)
# An `error` says nothing about the artifact and a `skipped` check did not run: promoting one would
# throw away the last accepted report of that check, so such reports never move a pointer.
_NOT_PROMOTED = frozenset({Status.ERROR.value, Status.SKIPPED.value})

Key = tuple[str, str]  # (cell, validator)


class BaselineError(InputError):
    """A promotion cannot be made as asked (unknown run, nothing matches, no passing run); CLI exit 2."""


@dataclass(frozen=True)
class Promotion:
    """One promotion: who moved which pointers to which run, when, and by what rule."""

    model: str
    run_id: str
    promoted_at: datetime
    promoted_by: str
    rule: str
    pointers: tuple[tuple[str, str, str], ...]  # (cell, validator, status)
    file: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": BASELINE_SCHEMA_VERSION,
            "model": self.model,
            "run_id": self.run_id,
            "promoted_at": self.promoted_at.isoformat(),
            "promoted_by": self.promoted_by,
            "rule": self.rule,
            "pointers": [{"cell": c, "validator": v, "status": s} for c, v, s in self.pointers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], file: str) -> Promotion:
        if int(data.get("schema_version", 1)) > BASELINE_SCHEMA_VERSION:
            raise BaselineError(f"baseline file has schema_version {data['schema_version']}, newer than this "
                                "modelcompat reads", file=file, fix="upgrade modelcompat")
        return cls(model=data["model"], run_id=data["run_id"],
                   promoted_at=datetime.fromisoformat(data["promoted_at"]),
                   promoted_by=data.get("promoted_by", "unknown"), rule=data.get("rule", "manual"),
                   pointers=tuple((p["cell"], p["validator"], p.get("status", "")) for p in data["pointers"]),
                   file=file)


def _who() -> str:
    try:
        return settings.user()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def _folder(model: str) -> str:
    # Model names may hold `/` (org/model): quote everything that is not a plain file-name character.
    return f"baselines/{quote(model, safe='')}"


def _matches(value: str, patterns: Sequence[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _write_promotion(store: Store, promotion: Promotion) -> str:
    stamp = promotion.promoted_at.strftime("%Y%m%dT%H%M%S%fZ")
    relative = f"{_folder(promotion.model)}/{stamp}-{uuid.uuid4().hex[:12]}.json"
    body = (json.dumps(promotion.to_json(), indent=2) + "\n").encode()
    return store.publish_file(relative, body)  # atomic and durable: a reader never sees half a promotion


def promotions(store: Store, model: str) -> list[Promotion]:
    """Every promotion of ``model``, oldest first (the history)."""
    out = []
    for relative in store.list_files(_folder(model), suffix=".json"):
        out.append(Promotion.from_json(json.loads(store.read_file(relative)), store.location(relative)))
    return sorted(out, key=lambda p: (p.promoted_at, p.file))


def pointers(store: Store, model: str, *, as_of: datetime | None = None) -> dict[Key, str]:
    """(cell, validator) → run_id of the accepted report, replaying promotions up to ``as_of``."""
    current: dict[Key, str] = {}
    for p in promotions(store, model):
        if as_of is not None and p.promoted_at > as_of:
            break
        for cell, validator, _status in p.pointers:
            current[(cell, validator)] = p.run_id
    return current


def promote(store: Store, run_id: str, *, cells: Sequence[str] | None = None,
            validators: Sequence[str] | None = None, rule: str = "manual",
            now: datetime | None = None, reason: str | None = None) -> Promotion:
    """Make a run's reports the baseline of its model (only the cells/validators matching, if given).

    Reports that are ``error`` or ``skipped`` are not promoted: the previous pointer of that check stays.
    The promotion is appended to the audit trail (who, the run, the rule, the file, ``reason``).

    Raises:
        BaselineError: the run is not in the store, or nothing in it matches.
    """
    try:
        record = store.require_run(run_id)
    except RunNotFoundError as exc:  # a promotion's own error (exit 2), with the store's message and fix
        raise BaselineError(exc.message, fix=exc.fix) from exc
    frame = store.reports(run_id)
    chosen = [
        (c, v, s) for c, v, s in zip(frame["cell"], frame["validator"], frame["status"], strict=True)
        if _matches(c, cells) and _matches(v, validators) and s not in _NOT_PROMOTED
    ]
    if not chosen:
        raise BaselineError(f"run {run_id!r} has no promotable report (pass, warn or fail) matching "
                            f"cells={list(cells) if cells else '*'} validators={list(validators) if validators else '*'}",
                            fix="valid cells: " + ", ".join(sorted(set(frame["cell"]))[:10]))
    promotion = Promotion(model=record.model_name, run_id=run_id, promoted_at=now or datetime.now(timezone.utc),
                          promoted_by=_who(), rule=rule, pointers=tuple(chosen))
    written = _write_promotion(store, promotion)
    audit.append(store, "baseline.promote", model=record.model_name, who=promotion.promoted_by, reason=reason,
                 now=promotion.promoted_at,
                 subject={"run_id": run_id, "model_version": record.model_version, "model_sha256": record.model_sha256,
                          "rule": rule, "checks": len(chosen), "file": written})
    return _with_file(promotion, written)


def _with_file(p: Promotion, file: str) -> Promotion:
    return Promotion(p.model, p.run_id, p.promoted_at, p.promoted_by, p.rule, p.pointers, file)


def last_passing_run(store: Store, model: str, *, trigger: str | None = None,
                     model_version: str | None = None) -> str | None:
    """The latest committed run of ``model`` whose verdict is ``pass`` (optionally of one trigger / model version)."""
    runs = store.runs()
    keep = (runs["model_name"] == model) & (runs["verdict"] == "pass")
    if trigger is not None:
        keep &= runs["trigger"] == trigger
    if model_version is not None:
        keep &= runs["model_version"] == model_version
    chosen = runs[keep]
    return None if chosen.empty else str(chosen["run_id"].iloc[-1])


def resolve_alias(model: str, alias: str, registry: Any = None) -> str:
    """The model version a registry alias (stage) such as ``production`` points at.

    ``registry``: a registry object (``LocalRegistry``/``MlflowRegistry``), a registry URI, or None for
    :func:`modelcompat.model_registry.selection.open_registry`'s default (``$MODELCOMPAT_REGISTRY``).
    """
    if registry is None or isinstance(registry, (str, os.PathLike)):
        from modelcompat.model_registry.selection import open_registry

        registry = open_registry(registry)
    aliases = registry.model(model).get("aliases", {})  # raises InputError for an unregistered model
    if alias not in aliases:
        raise BaselineError(f"model {model!r} has no alias {alias!r} in the registry",
                            fix="aliases: " + (", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "(none)")
                                + f"; set one with `modelcompat registry alias set {model} {alias} VERSION`")
    return str(aliases[alias])


def promote_rule(store: Store, model: str, rule: str = "last-passing", *, trigger: str | None = None,
                 alias: str | None = None, registry: Any = None, now: datetime | None = None,
                 reason: str | None = None) -> Promotion:
    """Promote by rule. ``last-passing``: the latest run of ``model`` with verdict ``pass``.

    With ``alias`` (a registry stage/alias such as ``production``), only runs of the model version the
    alias points at in ``registry`` (see :func:`resolve_alias`) count: "the last passing run of what is
    in production". The promotion's rule reads ``last-passing@<alias>``.

    Raises:
        BaselineError: unknown rule, unknown alias, or no run satisfies it.
    """
    if rule not in RULES:
        raise BaselineError(f"unknown promotion rule {rule!r}", fix="valid rules: " + ", ".join(RULES))
    version = resolve_alias(model, alias, registry) if alias is not None else None
    run_id = last_passing_run(store, model, trigger=trigger, model_version=version)
    if run_id is None:
        models = sorted(set(store.runs()["model_name"]))
        raise BaselineError(f"no run of model {model!r} has verdict pass"
                            + (f" with trigger {trigger!r}" if trigger else "")
                            + (f" on version {version!r} (alias {alias!r})" if alias is not None else ""),
                            fix=f"models in the store: {', '.join(models) or '(none)'}; or promote a run by id")
    return promote(store, run_id, rule=rule if alias is None else f"{rule}@{alias}", now=now, reason=reason)


def baseline_frame(store: Store, model: str, *, as_of: datetime | None = None) -> pd.DataFrame:
    """The baseline reports of ``model`` as a `Store.reports()` frame (one row per pointer).

    Reads only the runs the pointers name, one file each.
    """
    current = pointers(store, model, as_of=as_of)
    if not current:
        return store.reports("-")  # "-" is never a run id: the empty frame, with every column
    wanted = pd.DataFrame([(c, v, r) for (c, v), r in current.items()], columns=["cell", "validator", "run_id"])
    frames = [store.reports(r) for r in sorted(set(wanted["run_id"]))]
    rows = pd.concat(frames, ignore_index=True)
    return rows.merge(wanted, on=["cell", "validator", "run_id"], how="inner")


def baseline_for(store: Store, model_name: str, *, as_of: datetime | None = None) -> dict[Key, Report]:
    """(cell, validator) → the accepted :class:`Report` of ``model_name`` (empty if never promoted)."""
    return {(r.cell, r.validator): r for r in reports_from_frame(baseline_frame(store, model_name, as_of=as_of))}


def history_path(store: Store, model: str) -> Path | str:
    """Where the promotions of ``model`` are kept (for messages)."""
    return store.location(_folder(model))
