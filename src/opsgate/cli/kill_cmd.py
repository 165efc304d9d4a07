"""`opsgate kill …` and `opsgate revive …`: flip kill switches from a shell.

The command writes the database, audits, and publishes on the configured bus. With the
Redis bus running servers apply it at once; with the in-process bus (embedded) they pick
it up on their next reload (`gateway.quota.killswitch.reload_seconds`, default 5 s).

It starts only what a flip needs (database, audit log, bus, the kill-switch set), not the
server's runtime: that took ~6 s to import and start on the bench machine, and would also
have started the approval runner, which executes approved tool calls (a shell command that
switches traffic off must not run operations).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import typer
from prometheus_client import CollectorRegistry

from opsgate.audit.service import AuditLog
from opsgate.audit.wiring import build_audit_log
from opsgate.bus.factory import build_bus
from opsgate.cli.common import ConfigOpt, DataDirOpt, TenantOpt, echo_json, run, settings_or_exit
from opsgate.db.engine import Database
from opsgate.errors import NotFound, Unavailable
from opsgate.gateway.killswitch.service import KillSwitches, catalog_from
from opsgate.gateway.killswitch.state import Switch
from opsgate.identity.apikeys import ApiKeyStore
from opsgate.keyfile import resolve_secret_key
from opsgate.settings import Settings

kill_app = typer.Typer(
    help="Switch off model traffic: platform-wide, per model, deployment or API key.",
    no_args_is_help=True,
)
revive_app = typer.Typer(
    help="Switch back on what `opsgate kill` switched off.", no_args_is_help=True
)

ReasonOpt = Annotated[
    str, typer.Option("--reason", "-r", help="Why (mandatory; shown to refused callers).")
]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Who is flipping it, for the audit log (default: OS user)."),
]
Op = Literal["kill", "revive"]


def _os_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "unknown"


def _describe(sw: Switch) -> str:
    if sw.scope == "platform":
        return "platform (all model traffic)"
    where = f" in tenant {sw.tenant}" if sw.tenant else ""
    return f"{sw.scope.replace('_', ' ')} {sw.target!r}{where}"


@asynccontextmanager
async def _switches(settings: Settings) -> AsyncIterator[tuple[KillSwitches, Database]]:
    """The kill-switch set over the configured database, audit log and bus, as current as
    the database; everything it started is closed (the audit log flushed) on the way out."""
    g = settings.gateway
    if not g.enabled:
        raise Unavailable("kill switches are not running (gateway.enabled is false)")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url, pool_size=2, echo=settings.database.echo)
    audit: AuditLog | None = None
    bus = None
    ks: KillSwitches | None = None
    try:
        await db.ensure_tenant(settings.default_tenant)
        registry = CollectorRegistry()
        audit = await build_audit_log(
            db, settings.audit, settings.data_dir, registry,
            fallback_tenant=settings.default_tenant,
        )  # fmt: skip
        bus = build_bus(settings.bus)
        await bus.start()
        ks = await KillSwitches.start(
            db, bus, audit,
            settings=g.quota.killswitch,
            operator_tenant=settings.default_tenant,
            catalog=catalog_from((n, [d.name for d in m.deployments]) for n, m in g.models.items()),
            registry=registry,
        )  # fmt: skip
        yield ks, db
    finally:
        if ks is not None:
            await ks.close()
        if audit is not None:
            await audit.close()
        if bus is not None:
            await bus.close()
        await db.dispose()


async def _flip(
    settings: Settings, op: Op, scope: str, target: str, reason: str, tenant: str, by: str | None
) -> Switch:
    async with _switches(settings) as (ks, db):
        if scope == "api_key":
            keys = ApiKeyStore(db, resolve_secret_key(settings), settings.identity.api_key_prefix)
            if target not in {k.id for k in await keys.list(tenant)}:
                raise NotFound(f"no API key {target!r} in tenant {tenant!r}")
        actor = f"cli:{by or _os_user()}"
        flip = ks.kill if op == "kill" else ks.revive
        return await flip(scope, target, actor=actor, reason=reason, tenant=tenant)


def _do(
    op: Op,
    scope: str,
    target: str,
    reason: str,
    config: ConfigOpt,
    data_dir: DataDirOpt,
    tenant: str | None = None,
    by: str | None = None,
) -> None:
    s = settings_or_exit(config, data_dir)
    sw = run(_flip(s, op, scope, target, reason, tenant or s.default_tenant, by))
    done = "switched off" if op == "kill" else "switched back on"
    typer.echo(f"{_describe(sw)} {done} by {sw.actor}: {sw.reason}")
    if s.bus.backend == "memory":
        typer.echo(
            "note: the in-process bus does not reach running servers; they apply this within "
            f"{s.gateway.quota.killswitch.reload_seconds:g} s (their reload interval)."
        )


NameArg = Annotated[str, typer.Argument(help="Model or deployment name.")]
KeyArg = Annotated[str, typer.Argument(help="API key id (not the key itself).")]


@kill_app.command("platform")
def kill_platform(
    reason: ReasonOpt, by: ByOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Refuse every model request on every replica."""
    _do("kill", "platform", "*", reason, config, data_dir, by=by)


@kill_app.command("model")
def kill_model(
    name: NameArg,
    reason: ReasonOpt,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Refuse every request for one logical model."""
    _do("kill", "model", name, reason, config, data_dir, by=by)


@kill_app.command("deployment")
def kill_deployment(
    name: NameArg,
    reason: ReasonOpt,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Take one deployment out of routing (its models fall back to other deployments)."""
    _do("kill", "deployment", name, reason, config, data_dir, by=by)


@kill_app.command("key")
def kill_key(
    key_id: KeyArg,
    reason: ReasonOpt,
    tenant: TenantOpt = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Refuse every request made with one API key."""
    _do("kill", "api_key", key_id, reason, config, data_dir, tenant, by)


async def _list(settings: Settings) -> list[Switch]:
    async with _switches(settings) as (ks, _):
        return ks.active()


@kill_app.command("list")
def kill_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List the active kill switches."""
    switches = run(_list(settings_or_exit(config, data_dir)))
    if as_json:
        echo_json([{k: v for k, v in sw.as_event("kill").items() if k != "op"} for sw in switches])
        return
    if not switches:
        typer.echo("no active kill switches")
    for sw in switches:
        typer.echo(
            f"{_describe(sw)}  by {sw.actor} at {sw.created_at:%Y-%m-%d %H:%M:%S}Z: {sw.reason}"
        )


@revive_app.command("platform")
def revive_platform(
    reason: ReasonOpt, by: ByOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Allow model requests again."""
    _do("revive", "platform", "*", reason, config, data_dir, by=by)


@revive_app.command("model")
def revive_model(
    name: NameArg,
    reason: ReasonOpt,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Allow a model again."""
    _do("revive", "model", name, reason, config, data_dir, by=by)


@revive_app.command("deployment")
def revive_deployment(
    name: NameArg,
    reason: ReasonOpt,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Put a deployment back into routing."""
    _do("revive", "deployment", name, reason, config, data_dir, by=by)


@revive_app.command("key")
def revive_key(
    key_id: KeyArg,
    reason: ReasonOpt,
    tenant: TenantOpt = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Allow an API key again."""
    _do("revive", "api_key", key_id, reason, config, data_dir, tenant, by)
