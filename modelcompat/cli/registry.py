"""`modelcompat registry register|list|alias set`: the local folder model registry, and its Prefect events."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from modelcompat import settings
from modelcompat.cli.console import console
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
    registry: RegistryOption = None,
) -> None:
    """Point an alias at a version and emit `model.version.alias_set`."""
    from modelcompat.model_registry.local import LocalRegistry, emit_alias_set

    _refuse_remote_registry(registry)
    LocalRegistry(registry).set_alias(model_name, alias, version)
    console.print(f"{model_name}@{alias} -> {version}")
    if os.environ.get("PREFECT_API_URL"):
        emit_alias_set(model_name, alias, version)
