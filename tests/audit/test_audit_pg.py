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
        report = await verify(db, ["default"], {signer.key_id: signer.public_hex()})
        assert report.first_problem is not None and report.first_problem.seq == 3
    finally:
        await admin.dispose()
        await db.dispose()
