"""`modelcompat store compact`: merge many runs' report files into one."""
from __future__ import annotations

from typing import Annotated

import typer

from modelcompat.cli.console import console
from modelcompat.cli.options import StoreOption, open_store

store_app = typer.Typer(no_args_is_help=True, help="Maintain the report store (compaction, orphan cleanup).")


@store_app.command("compact")
def store_compact(
    older_than_runs: Annotated[int | None, typer.Option(help="Leave the newest N runs as they are (default: compact all).")] = None,
    store: StoreOption = None,
) -> None:
    """Merge the reports files of many runs into one Parquet file (atomic for readers), then delete the old ones."""
    done = open_store(store).compact(older_than_runs)
    if done.file is None:
        console.print("nothing to compact (fewer than two reports files to merge)")
        return
    console.print(f"compacted {len(done.run_ids)} runs ({done.rows} report rows) into {done.file}; "
                  f"removed {len(done.removed)} files", highlight=False)
