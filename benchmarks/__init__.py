"""The performance harness (issue 7): `make bench` / `python -m benchmarks [--quick] [--only NAME,...]`.

Every benchmark measures its figure *and* an anchor in the same run (a plain-Dask map, a bare
onnxruntime loop, pyarrow on its own, coreutils `sha256sum`, ...) and reports the ratio, so the numbers
mean something on a busy or different machine. Results go to `benchmarks/results.json` and are rendered
into `docs/benchmarks.md` (see `benchmarks.render`). These are measurements, not timed tests.

A benchmark module exposes `NAME`, `TITLE`, `DESCRIPTION` and `run(ctx) -> dict` (see `Figure` and
`result`); it raises `NotAvailable` when the product cannot be measured yet.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# Run order: cheap and self-contained first, the ones needing a Prefect server and Dask after.
BENCHMARK_MODULES = ["hashing", "large_model", "store", "latency_fidelity", "probe_start", "orchestration", "parallel_efficiency", "rerun",
                     "scaling_10x", "run_cost", "fixed_costs", "range_bisect", "localise", "scanners"]

# Issue 7 items this harness does not measure yet (printed by every run and listed in the doc).
NOT_COVERED: dict[str, str] = {}


class NotAvailable(Exception):
    """The thing to measure does not exist yet; the message says why (printed as `not available yet: …`)."""


@dataclass
class Figure:
    """One measured figure next to its anchor, and their ratio (value / anchor)."""

    name: str
    value: float
    unit: str
    anchor_name: str
    anchor_value: float
    lower_is_better: bool = True
    target: str | None = None  # the target, as text (e.g. "<= 10 ms")
    note: str | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.anchor_value if self.anchor_value else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


@dataclass
class Context:
    """What `__main__` hands every benchmark: sizes, a scratch folder, the shared Prefect server."""

    quick: bool
    workdir: Path
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _api_url: str | None = None
    _demo: Any = None

    def prefect(self) -> str:
        """The Prefect API URL (started once for the whole session; `PREFECT_API_URL` when set)."""
        if self._api_url is None:
            from modelcompat.orchestration.prefect_api import prefect_api

            self._api_url = self._stack.enter_context(prefect_api(str(self.workdir / "prefect-home")))
        return self._api_url

    def demo(self) -> Any:
        """The demo package, built once per session into the scratch folder."""
        if self._demo is None:
            from modelcompat.model.demo import build_demo

            self._demo = build_demo(self.workdir / "demo")
        return self._demo

    def close(self) -> None:
        self._stack.close()


def result(figures: list[Figure], raw: dict[str, Any], params: dict[str, Any], interpretation: str,
           tables: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A benchmark's entry; `tables` ({"title", "columns", "rows"}) are rendered after the figures."""
    out = {"status": "ok", "figures": [f.to_dict() for f in figures], "raw": raw, "params": params,
           "interpretation": interpretation}
    if tables:
        out["tables"] = tables
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, return value) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), numpy's default method."""
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"modelcompat-bench-{prefix}-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def exclusive_timing() -> Iterator[None]:
    """Runs inside take MODELCOMPAT_TIMING=exclusive (timed checks one at a time on the whole machine): for
    benchmarks whose yardstick assumes it (parallel_efficiency, scaling_10x), whatever the default."""
    previous = os.environ.get("MODELCOMPAT_TIMING")
    os.environ["MODELCOMPAT_TIMING"] = "exclusive"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MODELCOMPAT_TIMING", None)
        else:
            os.environ["MODELCOMPAT_TIMING"] = previous


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
