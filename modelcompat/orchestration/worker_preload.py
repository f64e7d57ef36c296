"""Imported by the forkserver that local Dask workers are forked from: runs the validators' preloads.

`multiprocessing`'s forkserver imports its preload modules by name, once, before forking any worker,
so this module does its work at import time. What to run comes from `MODELCOMPAT_WORKER_PRELOAD`
(comma-separated `module` or `module:function`), set by `modelcompat.orchestration.dask_runner` when it starts the
forkserver. A failing preload only means the worker pays that import itself later: it never stops the
forkserver (which would stop every local worker from starting).
"""
from __future__ import annotations

import importlib
import sys

from modelcompat import settings


def run(names: list[str]) -> list[str]:
    """Import each `module` (and call `function` of `module:function`); return the ones that failed."""
    failed = []
    for name in filter(None, (n.strip() for n in names)):
        module, _, function = name.partition(":")
        try:
            loaded = importlib.import_module(module)
            if function:
                getattr(loaded, function)()
        except BaseException as exc:  # noqa: BLE001 - see the module docstring
            failed.append(name)
            print(f"modelcompat: worker preload {name!r} failed ({type(exc).__name__}: {exc}); "
                  "workers will import it themselves", file=sys.stderr)
    return failed


run(settings.worker_preload())
