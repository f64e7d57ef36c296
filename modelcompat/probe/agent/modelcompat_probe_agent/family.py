"""The runtime contract of the probe: one module per runtime family (`family_<kind>.py`), found by that name.

A family module defines `FAMILY`, an instance of a `Family` subclass, which implements:
  load(path, fmt, backend, input_names, output_names)  the model into `common.STATE`; returns the I/O the runtime
                                                       declares, the providers/devices it runs on, its version,
                                                       the precision applied
  bind(arrays)              the payload bound to the loaded model: a no-argument callable, one call = one
                            inference returning the outputs in order (what `run` and `bench` time)
  version(), devices()      the runtime's version and the providers/devices it offers (`describe`)
and declares `module` (its import name: an environment provides the family when it is importable),
`distributions` (its pip names, read without importing it), `zygote_imports` (what a zygote imports once) and
`ops` (requests only it answers, e.g. onnxruntime's `kernel_check`). Runtime libraries are imported inside the
methods, never at module level: the agent starts with the stdlib only.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Callable, Dict, List, Optional

from .common import ProbeUsageError

Op = Callable[[Dict[str, Any]], Dict[str, Any]]
# Auto-detection order of `describe` without a kind (the environment provides the first importable one); a
# family module not listed here is detected after these, by name.
ORDER = ("onnxruntime", "torch", "openvino")
PREFIX = "family_"


class Family:
    """What every runtime family implements (see the module docstring); a subclass overrides all but `ops`."""

    kind = ""
    module = ""
    distributions: tuple = ()
    zygote_imports: List[str] = []
    ops: Dict[str, Op] = {}

    def version(self) -> str:
        raise NotImplementedError

    def devices(self) -> List[str]:
        raise NotImplementedError

    def load(self, path: str, fmt: str, backend: Dict[str, Any], input_names: List[str],
             output_names: List[str]) -> Dict[str, Any]:
        raise NotImplementedError

    def bind(self, arrays: Dict[str, Any]) -> Callable[[], List[Any]]:
        raise NotImplementedError


def kinds() -> List[str]:
    """Every family this agent holds: the known order first, then any other `family_<kind>.py`, by name."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(n[len(PREFIX):-3] for n in os.listdir(here) if n.startswith(PREFIX) and n.endswith(".py"))
    return [k for k in ORDER if k in found] + [k for k in found if k not in ORDER]


def family(kind: str) -> Family:
    """The `FAMILY` of `family_<kind>.py` (importing the module only: no runtime library is imported)."""
    if kind not in kinds():
        raise ProbeUsageError("unknown runtime kind %r (this probe has: %s)" % (kind, ", ".join(kinds())))
    return importlib.import_module("%s.%s%s" % (__package__, PREFIX, kind)).FAMILY


def detect() -> Optional[str]:
    """The first family whose library this environment can import (find_spec: nothing is imported)."""
    for kind in kinds():
        if importlib.util.find_spec(family(kind).module) is not None:
            return kind
    return None


def kind_of(args: Dict[str, Any], fallback: Optional[str] = None) -> str:
    """The family a request is for: its backend's `runtime`, else its `kind`, else `fallback`."""
    kind = (args.get("backend") or {}).get("runtime") or args.get("kind") or fallback
    if not kind:
        raise ProbeUsageError("the request names no runtime (backend.runtime or kind)")
    return str(kind)


def family_ops() -> Dict[str, Op]:
    """The requests families answer beyond the contract: each routed to the request's family (`kind_of`), or
    to the first family offering it when the request names none (onnxruntime's, as before families)."""
    offered: Dict[str, List[str]] = {}
    for kind in kinds():
        for name in family(kind).ops:
            offered.setdefault(name, []).append(kind)

    def route(name: str) -> Op:
        def op(args: Dict[str, Any]) -> Dict[str, Any]:
            kind = kind_of(args, offered[name][0])
            fam = family(kind)
            if name not in fam.ops:
                raise ProbeUsageError("%s has no %r request (offered by: %s)" % (kind, name, ", ".join(offered[name])))
            return fam.ops[name](args)
        return op

    return {name: route(name) for name in offered}
