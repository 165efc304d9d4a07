"""`opsgate secrets put|list|delete|rotate-kek` (values only from stdin or a file)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from opsgate.cli.common import ConfigOpt, DataDirOpt, TenantOpt, echo_json, run, settings_or_exit
from opsgate.db.base import Tenant
from opsgate.db.engine import Database
from opsgate.settings import Settings
from opsgate.vault.kek import build_kek
from opsgate.vault.service import VaultService

app = typer.Typer(help="Secrets for providers and connectors (write-only).", no_args_is_help=True)


def _vault(s: Settings) -> tuple[Database, VaultService]:
    db = Database(s.database_url)
    return db, VaultService(db, build_kek(s.vault, s.data_dir), s.vault.max_secret_bytes)


@app.command("put")
def put(
    name: Annotated[str, typer.Argument()],
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read the value from a file.")
    ] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    tenant: TenantOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Store a secret read from stdin (default) or --from-file; never from an argument."""
    s = settings_or_exit(config, data_dir)
    value = from_file.read_text() if from_file else sys.stdin.read()
    value = value.rstrip("\n")
    if not value:
        typer.echo("error: empty value (pipe it on stdin or use --from-file)", err=True)
        raise typer.Exit(2)

    async def go() -> int:
        db, vault = _vault(s)
        try:
            t = tenant or s.default_tenant
            await db.ensure_tenant(t) if t == s.default_tenant else None
            return (await vault.put(t, name, value, actor="cli", description=description)).version
        finally:
            await db.dispose()

    typer.echo(f"stored secret://{name} (version {run(go())})")


@app.command("list")
def list_(tenant: TenantOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List secret names and metadata."""
    s = settings_or_exit(config, data_dir)

    async def go() -> list[dict[str, object]]:
        db, vault = _vault(s)
        try:
            return [i.__dict__ for i in await vault.list_meta(tenant or s.default_tenant)]
        finally:
            await db.dispose()

    echo_json(run(go()))


@app.command("delete")
def delete(
    name: str, tenant: TenantOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Delete a secret."""
    s = settings_or_exit(config, data_dir)

    async def go() -> None:
        db, vault = _vault(s)
        try:
            await vault.delete(tenant or s.default_tenant, name)
        finally:
            await db.dispose()

    run(go())
    typer.echo(f"deleted secret://{name}")


@app.command("rotate-kek")
def rotate_kek(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Switch to a new key-encryption key and re-wrap every data key."""
    s = settings_or_exit(config, data_dir)

    async def go() -> int:
        db, vault = _vault(s)
        try:
            async with db.session(None) as sess:
                tenants = list((await sess.execute(select(Tenant.id))).scalars())
            return await vault.rotate_kek(tenants)
        finally:
            await db.dispose()

    typer.echo(f"re-wrapped {run(go())} data keys")
