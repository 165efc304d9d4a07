"""The audit log on the real PostgreSQL: append-only for the app role, two writers, tamper."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer
from opsgate.audit.verify import verify
from opsgate.db.engine import Database
from opsgate.settings import Settings
from tests.audit.conftest import event
from tests.conftest import migrated

pytestmark = pytest.mark.postgres


async def test_two_writers_one_chain_and_append_only(pg_settings: Settings) -> None:
    await migrated(pg_settings)
    signer = Signer.from_data_dir(pg_settings.data_dir)
    dbs = [Database(pg_settings.database_url) for _ in range(2)]
    logs = [
        AuditLog(db, AuditSettings(checkpoint_every=50, batch_linger_ms=1), signer) for db in dbs
    ]
    for log in logs:
        await log.start()
    try:

        async def write(log: AuditLog, base: int) -> None:
            for i in range(300):
                await log.emit(event(base + i))
            await log.flush()

        await asyncio.gather(write(logs[0], 0), write(logs[1], 10_000))
        report = await verify(dbs[0], ["default"], {signer.key_id: signer.public_hex()})
        assert report.ok, report.first_problem
        assert report.events == 600 and report.checkpoints >= 10
        # worker processes connect as the app role and see the tenant through RLS
        par = await verify(
            dbs[0], ["default"], {signer.key_id: signer.public_hex()}, workers=2, segment=64
        )
        assert par.as_dict() == report.as_dict() and par.in_workers == 600 - 64

        # the application role may not change or remove history
        for sql in (
            "update audit_events set actor='x' where seq=1",
            "delete from audit_events where seq=1",
            "delete from audit_checkpoints",
        ):
            with pytest.raises(Exception, match=r"permission denied|append-only"):
                async with dbs[0].session("default") as s:
                    await s.execute(text(sql))
    finally:
        for log in logs:
            await log.close()
        for db in dbs:
            await db.dispose()


async def test_superuser_tampering_detected(pg_settings: Settings) -> None:
    await migrated(pg_settings)
    signer = Signer.from_data_dir(pg_settings.data_dir)
    db = Database(pg_settings.database_url)
    log = AuditLog(db, AuditSettings(checkpoint_every=10), signer)
    await log.start()
    for i in range(30):
        await log.emit(event(i))
    await log.close()
    admin = Database(pg_settings.database_admin_url)
    try:
        async with admin.engine.begin() as conn:
            # even the owner must first disable the trigger that refuses changes
            with pytest.raises(Exception, match="append-only"):
                async with conn.begin_nested():
                    await conn.execute(text("delete from audit_events where seq = 3"))
            await conn.execute(
                text("alter table audit_events disable trigger audit_events_append_only")
            )
            await conn.execute(text("delete from audit_events where seq = 3"))
        for workers in (1, 2):
            report = await verify(
                db, ["default"], {signer.key_id: signer.public_hex()}, workers=workers, segment=4
            )
            assert report.first_problem is not None and report.first_problem.seq == 3
            assert "sequence gap" in report.first_problem.problem
    finally:
        await admin.dispose()
        await db.dispose()


async def test_constraint_errors_from_the_driver_are_retried_not_stuck(
    pg_settings: Settings,
) -> None:
    """The inserts run on the raw asyncpg connection: its constraint errors (a tenant that does
    not exist, a lost race for a seq) must take the re-encode/re-home path, not the generic
    back-off loop that would retry an impossible insert forever."""
    await migrated(pg_settings)
    signer = Signer.from_data_dir(pg_settings.data_dir)
    db = Database(pg_settings.database_url)
    await db.ensure_tenant("default")
    log = AuditLog(db, AuditSettings(batch_linger_ms=0), signer)
    await log.start()
    try:
        await log.emit(event(1, "ghost-tenant"))
        async with asyncio.timeout(10):
            await log.flush()
        async with db.session("default") as s:
            data = (await s.execute(text("select data from audit_events"))).scalars().all()
        assert any(b"ghost-tenant" in d for d in data)
        assert log.m_errors._value.get() == 0  # re-homed, not retried as a failure
    finally:
        await log.close()
        await db.dispose()
