"""`opsgate audit verify|export|checkpoints`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy import select

from opsgate.audit import query
from opsgate.audit.chain import GENESIS
from opsgate.audit.models import AuditEvent
from opsgate.audit.signing import Signer
from opsgate.audit.sinks import export_line
from opsgate.audit.verify import verify
from opsgate.cli.common import ConfigOpt, DataDirOpt, TenantOpt, echo_json, run, settings_or_exit
from opsgate.db.base import Tenant
from opsgate.db.engine import Database

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


async def _tenants(db: Database, only: str | None) -> list[str]:
    if only:
        return [only]
    async with db.session(None) as s:
        return list((await s.execute(select(Tenant.id).order_by(Tenant.id))).scalars())


@app.command("verify")
def verify_cmd(
    tenant: TenantOpt = None,
    checkpoints: Annotated[
        Path | None, typer.Option("--checkpoints", help="Exported checkpoints to hold the log to.")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Verify hash chains and signed checkpoints; names the first bad event, exit 1 if any."""
    s = settings_or_exit(config, data_dir)
    signer = Signer.from_data_dir(s.data_dir)
    external: list[dict[str, Any]] = []
    if checkpoints:
        external = [orjson.loads(x) for x in checkpoints.read_bytes().splitlines() if x.strip()]

    async def go() -> dict[str, Any]:
        db = Database(s.database_url)
        try:
            tenants = await _tenants(db, tenant)
            report = await verify(db, tenants, {signer.key_id: signer.public_hex()}, external)
            return report.as_dict()
        finally:
            await db.dispose()

    result = run(go())
    result["public_key"] = signer.public_hex()
    echo_json(result)
    if not result["ok"]:
        p = result["first_problem"]
        typer.echo(f"TAMPERED: tenant {p['tenant']} seq {p['seq']}: {p['problem']}", err=True)
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    tenant: TenantOpt = None,
    since: Annotated[datetime | None, typer.Option("--since")] = None,
    until: Annotated[datetime | None, typer.Option("--until")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Export events as JSON lines (with hash and prev_hash, so a SIEM can re-verify)."""
    s = settings_or_exit(config, data_dir)

    async def go() -> int:
        db = Database(s.database_url)
        out = output.open("wb") if output else sys.stdout.buffer
        n = 0
        try:
            for t in await _tenants(db, tenant):
                async with db.session(t) as sess:
                    q = select(AuditEvent.data, AuditEvent.hash, AuditEvent.ts).where(
                        AuditEvent.tenant_id == t
                    )
                    q = q.order_by(AuditEvent.seq).execution_options(yield_per=5000)
                    prev = GENESIS
                    result = await sess.stream(q)
                    async for data, digest, ts in result:
                        keep = (since is None or ts >= since) and (until is None or ts < until)
                        if keep:
                            out.write(export_line(data, digest, prev) + b"\n")
                            n += 1
                        prev = digest
                    await result.close()
        finally:
            if output:
                out.close()
            await db.dispose()
        return n

    n = run(go())
    typer.echo(f"exported {n} events", err=True)


@app.command("checkpoints")
def checkpoints_cmd(
    export: Annotated[Path, typer.Option("--export", help="Write checkpoints as JSON lines.")],
    tenant: TenantOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Export signed checkpoints, to keep somewhere the application cannot rewrite."""
    s = settings_or_exit(config, data_dir)

    async def go() -> list[dict[str, Any]]:
        db = Database(s.database_url)
        try:
            out: list[dict[str, Any]] = []
            for t in await _tenants(db, tenant):
                out.extend(await query.checkpoints(db, t))
            return out
        finally:
            await db.dispose()

    cks = run(go())
    export.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in cks))
    typer.echo(f"exported {len(cks)} checkpoints to {export}", err=True)
