from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from opsgate.audit.schemas import AuditEventIn
from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer
from opsgate.db.engine import Database
from opsgate.settings import Settings
from tests.conftest import migrated


def event(i: int, tenant: str = "default", **kw: Any) -> AuditEventIn:
    base: dict[str, Any] = {
        "tenant": tenant,
        "actor": f"user-{i % 7}",
        "action": "model.invoke" if i % 2 else "tool.call",
        "resource": f"model:m{i % 3}",
        "outcome": "allowed",
        "reason": "ok",
        "payload": {"i": i, "tokens": i * 3},
    }
    base.update(kw)
    return AuditEventIn(**base)


@pytest.fixture
async def audit_env(settings: Settings) -> AsyncIterator[tuple[Database, AuditLog, Signer]]:
    await migrated(settings)
    db = Database(settings.database_url)
    signer = Signer.from_data_dir(settings.data_dir)
    log = AuditLog(db, AuditSettings(checkpoint_every=10, batch_linger_ms=0), signer)
    await log.start()
    try:
        yield db, log, signer
    finally:
        await log.close()
        await db.dispose()
