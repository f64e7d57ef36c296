"""modelcompat probe: loads and runs one model inside a cell's interpreter, speaking JSON lines on stdin/stdout.

Runs under any interpreter (Python >= 3.8) with only the stdlib importable for sure: numpy, onnxruntime and
torch are imported lazily by the ops that need them, and modelcompat itself is never imported. This script only
parses its arguments (`ps` shows it, and `--cell <id>`, for every probe); the work is done by the package
`modelcompat_probe_agent` beside it (see its docstring, and `protocol` for the wire format). This folder holds
nothing else, so it adds no other module name to the cell's sys.path. Test-only fault injection:
MODELCOMPAT_PROBE_FAULTS=1 (read by the agent directly: it cannot import modelcompat.settings).
"""
import argparse
import os
import sys
from typing import List, Optional


def _agent_on_path() -> None:
    """This folder first on sys.path, for the agent package beside this script, also where Python did not put
    it there (-I, -P, PYTHONSAFEPATH in the cell's environment). It holds nothing else: nothing is shadowed."""
    here = os.path.dirname(os.path.abspath(__file__))
    if not sys.path or os.path.abspath(sys.path[0] or os.curdir) != here:
        sys.path.insert(0, here)


def main(argv: Optional[List[str]] = None) -> int:
    _agent_on_path()
    from modelcompat_probe_agent.protocol import serve

    parser = argparse.ArgumentParser(description=__doc__)
    # --cell is only there to make the process recognisable in `ps`.
    parser.add_argument("--cell", default="?", help="the cell this probe serves")
    parser.add_argument("--memory-limit-mb", type=int, default=None, help="RLIMIT_AS for this process")
    parser.add_argument("--zygote", metavar="KIND", default=None,
                        help="serve as a zygote: import KIND's modules once, then fork a fresh probe per request")
    parser.add_argument("--control-fd", type=int, default=None, help="(zygote) the host's control socket")
    opts, _ = parser.parse_known_args(argv)  # a zygote's command line carries padding (see zygote._ZYGOTE_PAD)
    if opts.zygote:
        from modelcompat_probe_agent.zygote import zygote_main

        return zygote_main(opts.zygote, opts.control_fd, os.path.abspath(__file__))
    return serve(opts.cell, opts.memory_limit_mb)


if __name__ == "__main__":
    sys.exit(main())
