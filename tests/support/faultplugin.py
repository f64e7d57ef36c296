"""Test-only validators that inject faults into real runs, installed as a real entry-point plugin.

`plugin_env(tmp)` writes a `.dist-info` (entry points `fault_probe` and `slow` in the group
`modelcompat.validators`) into a folder and returns environment variables that put it and this module on
`PYTHONPATH`: a CLI run started with them — its flow process and its Dask worker processes — discovers
these validators exactly as it discovers a third-party plugin. The pytest process itself never sees them.

What they do is driven by files in `$MCFAULT_DIR` (so a test can steer a run that is already going):

- `fault_probe`: `<dir>/probe-<cell>` holds a probe fault kind (`segfault`, `abort`, `hang`); absent -> pass.
- `slow`: each attempt records itself as `<dir>/<cell>.attempt-<n>` holding the pid of the process running it
  (the Dask worker). `<dir>/slow-<cell>` holds the mode: `first` (the first attempt blocks until killed, later
  attempts pass at once), `wait` (every attempt blocks until `<dir>/release` exists); absent -> pass.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from modelcompat import settings
from modelcompat.validators import Outcome, Params, ValidationContext, Validator

ENV_DIR = "MCFAULT_DIR"
TESTS_DIR = Path(__file__).resolve().parent.parent


def safe(cell_id: str) -> str:
    return cell_id.replace("/", "__")


def _dir() -> Path:
    return Path(os.environ[ENV_DIR])


def _mode(prefix: str, cell_id: str) -> str | None:
    path = _dir() / f"{prefix}-{safe(cell_id)}"
    return path.read_text().strip() if path.exists() else None


class FaultProbe(Validator):
    name = "fault_probe"
    version = "1"
    description = "Test only: makes the cell's probe segfault, abort or hang."
    inputs = ("hardware",)

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        kind = _mode("probe", ctx.cell.id) if ENV_DIR in os.environ else None
        if kind == "hang":
            ctx.request("fault", kind="hang", timeout_s=2)
        elif kind:
            ctx.request("fault", kind=kind)
        return Outcome()


class Slow(Validator):
    name = "slow"
    version = "1"
    description = "Test only: blocks a cell so that a fault can be injected while it runs."
    inputs = ("hardware",)
    needs_probe = False
    # Holds no timing lock: it waits on the test, not on cores. Held shared (as the harness holds every
    # untimed check), a blocked `slow` would keep another cell's latency check waiting, and that waiting
    # timed check would in turn hold back every untimed check after it (the lock's writer priority), so a
    # test that releases `slow` only once another cell's `slow` has started would never see it start.
    timed = True

    def validate(self, ctx: ValidationContext, params: Params) -> Outcome:
        directory = _dir()
        attempt = 1
        while True:  # O_EXCL: concurrent or repeated attempts each get their own number
            try:
                fd = os.open(directory / f"{safe(ctx.cell.id)}.attempt-{attempt}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                attempt += 1
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        mode = _mode("slow", ctx.cell.id)
        if mode == "first" and attempt == 1 or mode == "wait":
            deadline = time.monotonic() + 300
            while not (directory / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        return Outcome(metrics={"attempt": float(attempt)})


def plugin_env(root: Path, fault_dir: Path) -> dict[str, str]:
    """Install the plugin's metadata under `root`; return env vars for a process that should load it."""
    dist = root / "mcfault_plugin-0.1.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mcfault-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[modelcompat.validators]\nfault_probe = support.faultplugin:FaultProbe\nslow = support.faultplugin:Slow\n")
    fault_dir.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(root), str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
    # The probe agent answers `fault` only with the test flag set.
    return {"PYTHONPATH": path, ENV_DIR: str(fault_dir), settings.PROBE_FAULTS_ENV: "1"}


def attempts(fault_dir: Path, cell_id: str) -> list[int]:
    """Pids of the processes that ran `slow` on this cell, in attempt order."""
    found = sorted(fault_dir.glob(f"{safe(cell_id)}.attempt-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    return [int(p.read_text() or 0) for p in found]
