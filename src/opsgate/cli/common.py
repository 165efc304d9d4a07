"""Options and helpers shared by every `opsgate` sub-command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from opsgate.errors import ConfigError, OpsGateError

if TYPE_CHECKING:
    from opsgate.settings import Settings

T = TypeVar("T")

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="OPSGATE_DATA_DIR",
        help="Data directory (SQLite, key files). Default ~/.local/share/opsgate.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="OPSGATE_CONFIG", help="YAML configuration file."),
]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant (default: configured).")]


def settings_or_exit(config: Path | None, data_dir: Path | None, **over: Any) -> Settings:
    """Load settings; on problems print each key path and reason, exit 2."""
    # Imported here: loading settings pulls in every component's settings model, which
    # client-side commands (approvals, tools) never need.
    from opsgate.settings import load_settings

    try:
        return load_settings(config, data_dir=data_dir, **over)
    except ConfigError as exc:
        for path, reason in exc.problems:
            typer.echo(f"config error: {path}: {reason}", err=True)
        raise typer.Exit(2) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; OpsGate errors become a one-line message and exit 1 (config: 2)."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        for path, reason in exc.problems:
            typer.echo(f"config error: {path}: {reason}", err=True)
        raise typer.Exit(2) from None
    except OpsGateError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def echo_json(obj: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
