"""`opsgate keys create|list|revoke`: API keys, straight against the database (operator use)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from opsgate.cli.common import ConfigOpt, DataDirOpt, TenantOpt, echo_json, run, settings_or_exit
from opsgate.db.engine import Database
from opsgate.identity.apikeys import ApiKeyStore
from opsgate.identity.schemas import KeyCreate
from opsgate.keyfile import resolve_secret_key
from opsgate.settings import Settings

app = typer.Typer(help="API keys for services and agents.", no_args_is_help=True)


def _store(s: Settings) -> tuple[Database, ApiKeyStore]:
    db = Database(s.database_url)
    return db, ApiKeyStore(db, resolve_secret_key(s), s.identity.api_key_prefix)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A label for the key.")],
    kind: Annotated[str, typer.Option("--kind", help="service or agent")] = "service",
    role: Annotated[list[str] | None, typer.Option("--role", help="Role (repeatable).")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="model:/tool:/route: glob (repeatable).")
    ] = None,
    expires_days: Annotated[int | None, typer.Option("--expires-days")] = None,
    tenant: TenantOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a key and print it once."""
    s = settings_or_exit(config, data_dir)
    try:
        spec = KeyCreate(
            name=name,
            kind=kind,  # validated by the model
            roles=role or ["user"],
            scopes=scope or [],
            expires_in_days=expires_days,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    t = tenant or s.default_tenant

    async def go() -> str:
        db, store = _store(s)
        try:
            if t == s.default_tenant:
                await db.ensure_tenant(t)
            if not await db.tenant_exists(t):
                typer.echo(f"error: unknown tenant {t!r}", err=True)
                raise typer.Exit(1)
            expires = (
                datetime.now(UTC) + timedelta(days=spec.expires_in_days)
                if spec.expires_in_days
                else None
            )
            issued = await store.create(
                tenant=t,
                name=spec.name,
                kind=spec.kind,
                roles=list(spec.roles),
                scopes=list(spec.scopes),
                created_by="cli",
                expires_at=expires,
            )
            return issued.key
        finally:
            await db.dispose()

    key = run(go())
    typer.echo("API key (shown once):", err=True)
    typer.echo(key)


@app.command("list")
def list_keys(
    tenant: TenantOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """List keys (never the key material)."""
    s = settings_or_exit(config, data_dir)

    async def go() -> list[dict[str, object]]:
        db, store = _store(s)
        try:
            return [
                {
                    "id": k.id,
                    "name": k.name,
                    "kind": k.kind,
                    "roles": k.roles,
                    "scopes": k.scopes,
                    "created_at": k.created_at,
                    "expires_at": k.expires_at,
                    "revoked_at": k.revoked_at,
                }
                for k in await store.list(tenant or s.default_tenant)
            ]
        finally:
            await db.dispose()

    echo_json(run(go()))


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (second part of the key).")],
    tenant: TenantOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a key. Running servers refuse it within identity.cache_ttl_seconds (1 s)."""
    s = settings_or_exit(config, data_dir)

    async def go() -> None:
        db, store = _store(s)
        try:
            await store.revoke(tenant or s.default_tenant, key_id)
        finally:
            await db.dispose()

    run(go())
    typer.echo(f"revoked {key_id}")
