"""The progress hook: listeners hear every event with its data; a broken one never reaches the flow."""
from __future__ import annotations

from modelcompat.execution import progress


def test_listeners_hear_events_until_removed_and_a_broken_one_is_ignored() -> None:
    heard: list[tuple[str, dict]] = []

    def broken(event: str, data: dict) -> None:
        raise RuntimeError("display bug")

    progress.add_listener(broken)
    progress.add_listener(lambda e, d: heard.append((e, d)))
    listener = progress._listeners[-1]
    try:
        progress.notify("planned", total=3)  # the broken listener comes first and must not stop the next
        progress.remove_listener(listener)
        progress.notify("cell_done", reports=[])
    finally:
        progress.remove_listener(broken)
        progress.remove_listener(listener)
    assert heard == [("planned", {"total": 3})]
    assert broken not in progress._listeners
