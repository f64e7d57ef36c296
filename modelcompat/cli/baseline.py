"""`modelcompat baseline promote|show`: accept a run as a model's baseline; print a baseline and its history."""
from __future__ import annotations

from typing import Annotated

import typer

from modelcompat.cli.console import console
from modelcompat.cli.options import StoreOption, open_store, split_csv
from modelcompat.errors import InputError

baseline_app = typer.Typer(no_args_is_help=True, help="Accepted baselines: promote a run, show a model's baseline.")


@baseline_app.command("promote")
def baseline_promote(
    run_id: Annotated[str | None, typer.Argument(help="The run whose reports become the baseline.")] = None,
    rule: Annotated[str | None, typer.Option(help="Pick the run by rule instead: last-passing (needs --model).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name, with --rule.")] = None,
    alias: Annotated[str | None, typer.Option(help="With --rule: only runs of the version this registry alias/stage (e.g. production) points at.")] = None,
    registry: Annotated[str | None, typer.Option(help="With --alias: registry folder or URI (default: $MODELCOMPAT_REGISTRY).")] = None,
    cells: Annotated[str | None, typer.Option(help="Only cells matching these glob(s), comma-separated.")] = None,
    validators: Annotated[str | None, typer.Option(help="Only these validators (comma-separated).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why: kept with the promotion in the audit trail "
                                               "(`modelcompat audit`).")] = None,
    store: StoreOption = None,
) -> None:
    """Make a run (or the run a rule picks) the accepted baseline of its model, per cell × validator; recorded
    in the audit trail with who and why."""
    from modelcompat.baseline.promotion import promote, promote_rule
    from modelcompat.render.tables import promotion_line

    if (run_id is None) == (rule is None):
        raise InputError("give either RUN_ID or --rule", field="RUN_ID/--rule",
                         fix="modelcompat baseline promote RUN_ID, or --rule last-passing --model NAME")
    if rule is not None:
        if model is None:
            raise InputError("--rule needs --model", field="--model", fix="--rule last-passing --model NAME")
        promotion = promote_rule(open_store(store), model, rule, alias=alias, registry=registry, reason=reason)
    elif alias is not None:
        raise InputError("--alias goes with --rule", field="--alias", fix="--rule last-passing --model NAME --alias production")
    else:
        promotion = promote(open_store(store), run_id, cells=split_csv(cells), validators=split_csv(validators),
                            reason=reason)
    console.print(promotion_line(promotion), highlight=False)


@baseline_app.command("show")
def baseline_show(
    model: Annotated[str, typer.Argument(help="Model name (as in its manifest).")],
    store: StoreOption = None,
) -> None:
    """Print a model's baseline (cell × validator → run) and its promotion history."""
    from modelcompat.baseline.promotion import promotions
    from modelcompat.render.tables import baseline_tables

    history = promotions(open_store(store), model)
    if not history:
        raise InputError(f"no baseline for model {model!r}", field="MODEL",
                         fix="promote a run: `modelcompat baseline promote RUN_ID` "
                             "or `--rule last-passing --model NAME`")
    for table in baseline_tables(model, history):
        console.print(table)
