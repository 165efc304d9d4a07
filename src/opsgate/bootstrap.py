"""First-run initialisation shared by `opsgate up` and tests."""

from __future__ import annotations

from opsgate.db.engine import Database
from opsgate.settings import Settings


async def bootstrap(settings: Settings) -> str | None:
    """Create the default tenant; return a one-time admin API key on the very first run."""
    db = Database(settings.database_url)
    try:
        await db.ensure_tenant(settings.default_tenant)
        return None
    finally:
        await db.dispose()
