"""Usage fixtures: a migrated SQLite database, and the app with per-role API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opsgate.db.engine import Database
from opsgate.db.migrate import upgrade
from tests.gateway.killswitch.conftest import ks_harness, make_key

__all__ = ["ks_harness", "make_key", "sqlite_db"]


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}"
    await upgrade(url)
    db = Database(url)
    for t in ("default", "acme"):
        await db.ensure_tenant(t)
    yield db
    await db.dispose()
