"""A local cluster started in the background (ClusterStart): its workers get the variables given at start, the
flow's runner takes it over, and one nobody took is closed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# A fresh interpreter: the multiprocessing forkserver a cluster starts is one per process.
_SCRIPT = textwrap.dedent("""
    import json, os
    from dataclasses import dataclass
    from modelcompat.orchestration.dask_runner import DaskCellRunner
    from modelcompat.orchestration.local_cluster import ClusterStart

    @dataclass(frozen=True)
    class Hardware:
        resources: dict

    @dataclass(frozen=True)
    class Cell:
        id: str
        hardware: Hardware

    @dataclass(frozen=True)
    class Job:
        cell: Cell

    def seen(job):
        return {"pid": os.getpid(), "api": os.environ.get("PREFECT_API_URL")}

    def main():
        out = {}
        start = ClusterStart(1, (), {"PREFECT_API_URL": "http://127.0.0.1:9/api"})
        runner = DaskCellRunner(workers=1, inline_max_cells=0, prestarted=start).duplicate()  # as Prefect does
        with runner:
            runner.submit_cells(seen, [Job(Cell("c1", Hardware({})))])
            out["cell"] = runner.cell_result("c1")
            cluster = runner._cluster
            out["took_the_started_cluster"] = cluster is start._future.result()
        out["closed_by_the_runner"] = cluster.status.name
        start.close_unused()  # taken: nothing to do, no error
        unused = ClusterStart(1)
        unused.close_unused()
        out["unused"] = unused._future.result().status.name
        out["parent_api"] = os.environ.get("PREFECT_API_URL")
        print("RESULT " + json.dumps(out))

    if __name__ == "__main__":
        main()
""")


def test_a_cluster_started_in_the_background_is_taken_by_the_runner_and_an_unused_one_is_closed(tmp_path) -> None:
    script = tmp_path / "prestart.py"
    script.write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[0].removeprefix("RESULT "))
    # The cell ran on the background cluster's worker (another process), which got the URL given at start
    # although this process never had it.
    assert out["cell"]["api"] == "http://127.0.0.1:9/api" and out["parent_api"] is None
    assert out["took_the_started_cluster"] is True
    assert out["closed_by_the_runner"] == "closed"
    assert out["unused"] == "closed"
