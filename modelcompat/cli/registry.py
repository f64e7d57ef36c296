"""`modelcompat registry register|list|alias set`: the local folder model registry, and its Prefect events."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from modelcompat import settings
from modelcompat.cli.console import console
from modelcompat.cli.options import StoreOption, open_store
from modelcompat.errors import InputError

registry_app = typer.Typer(no_args_is_help=True, help="The local model registry (versions, aliases, verdicts).")
alias_app = typer.Typer(no_args_is_help=True, help="Model version aliases (e.g. production).")
registry_app.add_typer(alias_app, name="alias")

RegistryOption = Annotated[Path | None, typer.Option(help="Registry folder.")]


def _refuse_remote_registry(registry: Path | None) -> None:
    """The registry commands manage the local folder registry; an MLflow registry is managed in MLflow."""
    uri = settings.registry_uri() or ""
    if registry is None and uri.startswith(("mlflow+http://", "mlflow+https://")):
        raise InputError("MODELCOMPAT_REGISTRY points at MLflow; these commands manage the local folder registry",
                         field="MODELCOMPAT_REGISTRY",
                         fix="register versions and set aliases in MLflow (its webhook starts the checks), "
                             "or pass --registry DIR for a local registry")


@registry_app.command("register")
def registry_register(
    package_dir: Annotated[Path, typer.Argument(help="Model package folder.")],
    registry: Annotated[Path | None, typer.Option(help="Registry folder (default: $MODELCOMPAT_REGISTRY or .modelcompat/registry).")] = None,
) -> None:
    """Register a package as a model version and emit `model.version.registered` to Prefect."""
    from modelcompat.model_registry.local import LocalRegistry, emit_registered

    _refuse_remote_registry(registry)
    entry = LocalRegistry(registry).register(package_dir)
    console.print(f"registered {entry['name']} {entry['version']} ({entry['sha256'][:12]}…)")
    if os.environ.get("PREFECT_API_URL"):
        emit_registered(entry["name"], entry["version"], entry["package"])
        console.print("event model.version.registered emitted")
    else:
        console.print("PREFECT_API_URL is not set: no event emitted (nothing would receive it)", style="yellow")


@registry_app.command("list")
def registry_list(registry: RegistryOption = None) -> None:
    """List registered models, their versions, aliases and last verdicts."""
    from modelcompat.model_registry.local import LocalRegistry
    from modelcompat.render.tables import registry_table

    _refuse_remote_registry(registry)
    reg = LocalRegistry(registry)
    console.print(registry_table(reg.root, ((name, reg.model(name)) for name in reg.models())))


@alias_app.command("set")
def registry_alias_set(
    model_name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    version: Annotated[str, typer.Argument(help="Version the alias points to.")],
    override: Annotated[bool, typer.Option(help="Move it even though the version's latest verdict is not pass/warn "
                                           "(needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail; required with --override).")] = None,
    registry: Annotated[str | None, typer.Option(help="Registry folder or MLflow URI (mlflow+http(s)://…; default: "
                                                 "$MODELCOMPAT_REGISTRY or .modelcompat/registry).")] = None,
    store: StoreOption = None,
) -> None:
    """Point an alias at a version whose latest verdict is pass or warn (the promotion gate), record it in the
    audit trail and emit `model.version.alias_set`. A failing, regressed or unchecked version is refused
    (exit 2) unless --override --reason."""
    from modelcompat.model_registry.local import emit_alias_set
    from modelcompat.model_registry.promotion_gate import set_alias_gated
    from modelcompat.model_registry.selection import open_registry

    record = set_alias_gated(open_registry(registry), open_store(store), model_name, alias, version,
                             override=override, reason=reason)
    moved = record["subject"]
    console.print(f"{model_name}@{alias} -> {moved['version']} (verdict {moved['verdict'] or 'none'}"
                  + (f"; override: {reason}" if record["action"] == "alias.override" else "") + ")", highlight=False)
    if os.environ.get("PREFECT_API_URL"):
        emit_alias_set(model_name, alias, moved["version"])
