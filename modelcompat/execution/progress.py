"""A process-local hook so the CLI can show progress while the flow (same process) runs its cells."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def notify(event: str, **data: Any) -> None:
    """Tell listeners (e.g. `planned` with total, `cell_done` with reports); never raises into the flow."""
    for listener in list(_listeners):
        try:
            listener(event, data)
        except Exception:  # a broken progress display must not break a run
            pass
