"""`probe_start`: what a cell pays before its first check that needs the runtime, fresh probe vs zygote fork.

For each runtime kind of the default matrix (onnxruntime, torch), on the demo package's artifact for it
(model.onnx; model.pt2 as the torch-eager backend loads it): a new `ProbeSession` from creation to the
answers of `describe` and `load`, as `check_cell` does first. Anchor: the same session with
`MODELCOMPAT_PROBE_ZYGOTE=0`, i.e. a fresh interpreter that imports the runtime itself (what every cell
paid before zygotes). The zygote's own start (once per worker, interpreter and environment) is a
separate figure. Sessions alternate fresh/forked, round by round.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import Context, Figure, median, result, scratch

NAME = "probe_start"
TITLE = "Probe start per cell: forked from a zygote vs a fresh interpreter"
DESCRIPTION = ("A cell's probe from session creation to `describe` + `load` of the demo model answered: forked from "
               "the runtime's warm zygote vs a fresh interpreter importing the runtime (MODELCOMPAT_PROBE_ZYGOTE=0); "
               "and the zygote's own one-time start.")

_ARTIFACTS = {"onnxruntime": ("onnx", {"runtime": "onnxruntime", "provider": "CPUExecutionProvider"}),
              "torch": ("pt2", {"runtime": "torch", "mode": "eager"})}


@contextlib.contextmanager
def _zygotes(on: bool) -> Iterator[None]:
    """MODELCOMPAT_PROBE_ZYGOTE set for the block (it is part of the probe's environment, so of the key)."""
    from modelcompat.settings import PROBE_ZYGOTE_ENV

    previous = os.environ.get(PROBE_ZYGOTE_ENV)
    os.environ[PROBE_ZYGOTE_ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PROBE_ZYGOTE_ENV, None)
        else:
            os.environ[PROBE_ZYGOTE_ENV] = previous


def _ready(kind: str, artifact: Path, fmt: str, backend: dict[str, Any], workdir: Path, forked: bool) -> dict[str, Any]:
    from modelcompat.probe.launcher import ProbeSession

    with _zygotes(forked):
        t0 = time.perf_counter()
        with ProbeSession(sys.executable, f"bench/{kind}", workdir, kind=kind) as session:
            session.request("describe", kind=kind)
            loaded = session.request("load", artifact=str(artifact), format=fmt, backend=backend)
            elapsed = time.perf_counter() - t0
            assert (session.forked_from is not None) == forked, session.log_path.read_text()[-1000:]
    return {"elapsed_s": elapsed, "load_time_ms": loaded.get("load_time_ms")}


def run(ctx: Context) -> dict[str, Any]:
    from modelcompat.probe import zygote as zygotes
    from modelcompat.probe.launcher import prewarm_zygote

    package = ctx.demo()
    rounds = 2 if ctx.quick else 7
    raw: dict[str, Any] = {}
    figures: list[Figure] = []
    with scratch("probe-start") as tmp:
        for kind, (fmt, backend) in _ARTIFACTS.items():
            artifact = package.artifact(fmt)
            assert artifact is not None, f"the demo package has no {fmt} artifact"
            path = Path(package.root) / artifact.path
            zygotes.close_all()
            with _zygotes(True):  # the environment the forked sessions run with
                t0 = time.perf_counter()
                state = prewarm_zygote(sys.executable, kind)
                zygote_start = time.perf_counter() - t0
            assert state == "ready", state
            fresh, forked = [], []
            for i in range(rounds):
                fresh.append(_ready(kind, path, fmt, backend, tmp / f"{kind}-fresh-{i}", forked=False))
                forked.append(_ready(kind, path, fmt, backend, tmp / f"{kind}-forked-{i}", forked=True))
            f_med = median([r["elapsed_s"] for r in fresh])
            z_med = median([r["elapsed_s"] for r in forked])
            raw[kind] = {"zygote_start_s": zygote_start, "fresh": fresh, "forked": forked}
            figures += [
                Figure(f"{kind}: probe ready (describe + load {fmt}), forked from the zygote", z_med, "s",
                       "fresh interpreter, same requests", f_med),
                Figure(f"{kind}: the zygote's own start (once per worker, interpreter and environment)",
                       zygote_start, "s", "fresh interpreter, same requests", f_med),
            ]
    zygotes.close_all()
    t, o = raw["torch"], raw["onnxruntime"]
    t_f, t_z = median([r["elapsed_s"] for r in t["fresh"]]), median([r["elapsed_s"] for r in t["forked"]])
    o_f, o_z = median([r["elapsed_s"] for r in o["fresh"]]), median([r["elapsed_s"] for r in o["forked"]])
    interpretation = (
        f"A torch cell's probe is ready for its first check in {t_z:.2f} s when forked from the warm zygote, "
        f"against {t_f:.2f} s for a fresh interpreter that imports torch and what torch.export.load pulls in "
        f"({t_f / t_z:.0f}x); an onnxruntime cell's in {o_z:.3f} s against {o_f:.2f} s. The zygote itself "
        f"starts once per worker, interpreter and environment: {t['zygote_start_s']:.2f} s for torch, "
        f"{o['zygote_start_s']:.2f} s for onnxruntime, so it pays for itself from the second cell of that "
        "runtime on a worker. What is left of a forked start is the fork, the probe's set-up and the load itself "
        "(the model's own load time is in the raw data)."
    )
    params = {"rounds": rounds, "artifacts": {k: v[0] for k, v in _ARTIFACTS.items()}, "model": "demo package",
              "interpreter": "the host venv (host-ort, host-torch)"}
    return result(figures, raw, params, interpretation)
