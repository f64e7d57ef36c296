"""The promotion gate: an alias (e.g. production) moves only to a version whose latest verdict is pass or warn,
unless overridden with a reason; every move, refused or not, is in the audit trail with who and why.

One gate for every registry with `version(name, v)` (its `verdict`), `model(name)` (its `aliases`) and
`set_alias(name, alias, v)`: the local folder registry and the MLflow adapter alike.
"""
from __future__ import annotations

from typing import Any

from modelcompat.errors import InputError
from modelcompat.store import Store, audit

PROMOTABLE = ("pass", "warn")


class PromotionRefused(InputError):
    """The version has not passed its checks (fail, regressed, error, or never checked); nothing was moved."""


def set_alias_gated(registry: Any, store: Store, name: str, alias: str, version: str, *, override: bool = False,
                    reason: str | None = None, who: str | None = None) -> dict[str, Any]:
    """Point `alias` at `version` if its latest verdict allows it (or `override` with a `reason`); the audit record.

    Raises:
        PromotionRefused: the verdict is not pass/warn and there is no override (the refusal is recorded too).
        InputError: `override` without a `reason`.
    """
    if override and not (reason or "").strip():
        raise InputError("an override must say why", field="--reason", fix="add --reason TEXT (kept in the audit trail)")
    entry = registry.version(name, version)
    verdict = entry.get("verdict")
    previous = (registry.model(name).get("aliases") or {}).get(alias)
    subject = {"alias": alias, "version": str(entry["version"]), "previous": previous, "verdict": verdict,
               "run_id": entry.get("run_id"), "registry": str(getattr(registry, "root", "") or repr(registry))}
    allowed = verdict in PROMOTABLE
    if not allowed and not override:
        audit.append(store, "alias.refused", model=name, subject=subject, reason=reason, who=who)
        said = f"its latest verdict is {verdict}" if verdict else "it has never been checked"
        seen = f" (run {entry['run_id']}: modelcompat report {entry['run_id']})" if entry.get("run_id") else ""
        raise PromotionRefused(
            f"{name}@{alias} was not moved to version {entry['version']}: {said}{seen}", field="VERSION",
            fix="check it first (modelcompat run, or the on-model-registered flow) and fix what fails, "
                "or pass --override --reason TEXT (recorded in the audit trail)")
    registry.set_alias(name, alias, str(entry["version"]))
    return audit.append(store, "alias.set" if allowed else "alias.override", model=name, subject=subject,
                        reason=reason, who=who)
