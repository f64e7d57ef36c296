"""Run the CLI as `python -m modelcompat.cli` does, recording at exit which Prefect/Dask modules the process loaded:
causal evidence that a run started no Prefect engine, server or cluster in the CLI process."""
from __future__ import annotations

import json
import sys
from pathlib import Path

# `python -c RECORDING_CLI <args>` with MODULES_OUT set: writes the sorted module names to that file at exit.
RECORDING_CLI = """
import atexit, json, os, sys
def _record():
    with open(os.environ["MODULES_OUT"], "w") as f:
        json.dump(sorted(m for m in sys.modules if m.split(".")[0] in ("prefect", "distributed", "dask")), f)
atexit.register(_record)
from modelcompat.cli.app import main
sys.argv = ["modelcompat", *sys.argv[1:]]
main()
"""


def recording_cli(*args: str) -> list[str]:
    """The command line running the CLI with `args` under the import recorder."""
    return [sys.executable, "-c", RECORDING_CLI, *args]


def modules_loaded(out: Path) -> list[str]:
    """The Prefect/Dask modules the recorded process had loaded when it exited."""
    return json.loads(out.read_text())
