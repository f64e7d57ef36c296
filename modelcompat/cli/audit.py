"""`modelcompat audit`: the store's audit trail (run verdicts, baseline promotions, alias moves and overrides,
verified remediations), and `--verify` of its hash chain."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any

import typer

from modelcompat.cli.console import console, print_error
from modelcompat.cli.options import StoreOption, open_store
from modelcompat.errors import InputError


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--since {value!r} is not a date or time", field="--since",
                         fix="an ISO date or time, e.g. 2026-12-01 or 2026-12-01T08:00:00+00:00") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _what(record: dict[str, Any]) -> str:
    s = record.get("subject") or {}
    action = record["action"]
    if action == "run.verdict":
        return f"run {s.get('run_id')}: {s.get('verdict')} ({s.get('model_version')}, sha256 {str(s.get('model_sha256'))[:12]}…, {s.get('trigger')})"
    if action == "baseline.promote":
        return f"run {s.get('run_id')} promoted ({s.get('rule')}, {s.get('checks')} checks)"
    if action.startswith("alias."):
        return f"@{s.get('alias')} -> {s.get('version')} (was {s.get('previous') or '-'}; verdict {s.get('verdict') or 'none'})"
    if action == "remediation.verified":
        return f"run {s.get('run_id')}: {len(s.get('fixes') or [])} verified fix(es), {s.get('file')}"
    return json.dumps(s, sort_keys=True)


def audit(
    model: Annotated[str | None, typer.Argument(help="Only this model's records.")] = None,
    since: Annotated[str | None, typer.Option(help="Only records at or after this ISO date/time.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the whole hash chain: exit 1 naming the first "
                                         "removed, edited or reordered record.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the records as JSON lines.")] = False,
    store: StoreOption = None,
) -> None:
    """Print the audit trail: who decided what, when and why (run verdicts, baseline promotions, alias moves,
    overrides, verified remediations), oldest first."""
    from modelcompat.store import audit as trail

    store_ = open_store(store)
    if verify:
        result = trail.verify(store_)
        if not result.ok:
            print_error(f"audit trail of {store_.uri}: {result.problem}")
            raise typer.Exit(1)
        console.print(f"audit trail of {store_.uri}: {result.records} records, chain intact; head sha256 "
                      f"{result.head or '-'} (anchor it elsewhere to cover the newest record)", highlight=False,
                      soft_wrap=True)
        return
    for record in trail.records(store_, model=model, since=_since(since)):
        if json_out:
            console.print(json.dumps(record, sort_keys=True), highlight=False, soft_wrap=True, markup=False)
            continue
        why = f" — {record['reason']}" if record.get("reason") else ""
        console.print(f"{record['seq']:>5} {record['at'][:19]} {record['who']:<16} {record['action']:<20} "
                      f"{record.get('model') or '-'}: {_what(record)}{why}", highlight=False, soft_wrap=True,
                      markup=False)
