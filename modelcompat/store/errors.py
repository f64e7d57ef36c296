"""The store's own errors: every failure of the store is a StoreError (the CLI maps them to exit 2)."""
from __future__ import annotations

from collections.abc import Sequence

from modelcompat.errors import ModelcompatError


class StoreError(ModelcompatError):
    """The store cannot do what was asked (unknown run, unreadable file, newer schema, …)."""


class DuplicateRunError(StoreError):
    """A run with this run_id is already committed; runs are immutable."""


class RunNotFoundError(StoreError):
    """No committed run has this id. The message names the store, the run id and the recent run ids."""

    def __init__(self, store: str, run_id: str, recent: Sequence[str]) -> None:
        self.store = store
        self.run_id = run_id
        self.recent = tuple(recent)
        self.message = f"no committed run {run_id!r} in the store {store}"
        self.fix = ("pick one of the recent runs: " + ", ".join(self.recent) if self.recent
                    else "the store is empty: run `modelcompat run` first, or pass --store")
        super().__init__(f"{self.message}; {self.fix}")
