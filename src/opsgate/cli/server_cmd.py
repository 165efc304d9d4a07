"""`opsgate serve` and `opsgate up`."""

from __future__ import annotations

from types import FrameType
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from opsgate.app import create_app
from opsgate.cli.common import ConfigOpt, DataDirOpt, run, settings_or_exit
from opsgate.db import migrate
from opsgate.settings import Settings

HostOpt = Annotated[str | None, typer.Option("--host", help="Bind address.")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port.")]


class _Server(uvicorn.Server):
    """Marks the runtime as draining the moment a stop signal arrives, so /readyz turns
    false before uvicorn stops accepting and drains in-flight requests (up to
    server.graceful_shutdown_seconds)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        rt = getattr(self._app.state, "runtime", None)
        if rt is not None:
            rt.draining = True
        super().handle_exit(sig, frame)


def _serve(settings: Settings) -> None:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=settings.server.access_log,
        timeout_graceful_shutdown=int(settings.server.graceful_shutdown_seconds),
        server_header=False,
    )
    _Server(config, app).run()


def _overrides(host: str | None, port: int | None) -> dict[str, object]:
    server: dict[str, object] = {}
    if host:
        server["host"] = host
    if port:
        server["port"] = port
    return {"server": server} if server else {}


def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Serve OpsGate (schema must be current: run `opsgate db upgrade` first)."""
    _serve(settings_or_exit(config, data_dir, **_overrides(host, port)))


async def first_run(settings: Settings) -> str | None:
    """Migrate, create the default tenant; return a new admin key on the very first run."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app_role = settings.database.app_role if settings.database.admin_url else None
    await migrate.upgrade(settings.database_admin_url, app_role)
    from opsgate.bootstrap import bootstrap

    return await bootstrap(settings)


def up(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """First-run init (migrations, default tenant, admin key) and serve."""
    settings = settings_or_exit(config, data_dir, **_overrides(host, port))
    admin_key = run(first_run(settings))
    url = settings.server.public_url or f"http://{settings.server.host}:{settings.server.port}"
    typer.echo(f"OpsGate {settings.mode} mode, data in {settings.data_dir}")
    typer.echo(f"Listening on {url}  (API docs: {url}/docs)")
    if admin_key:
        typer.echo("")
        typer.echo("Admin API key (shown once, store it now):")
        typer.echo(f"  {admin_key}")
        typer.echo("")
    _serve(settings)
