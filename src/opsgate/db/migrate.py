"""Run Alembic migrations programmatically (`opsgate db upgrade`, `opsgate up`, tests).

Each domain keeps its own migration branch (a `branch_labels` per domain), so upgrades go
to `heads`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from opsgate.db.engine import _sqlite_pragmas
from opsgate.db.registry import append_only_tables
from opsgate.db.rls import apply_grants

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    return cfg


def _upgrade_sync(url: str, revision: str) -> None:
    command.upgrade(alembic_config(url), revision)


async def upgrade(admin_url: str, app_role: str | None = None, revision: str = "heads") -> None:
    """Migrate the schema with the owner connection, then (PostgreSQL) grant the app role."""
    if admin_url.startswith("sqlite"):
        db_path = admin_url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    # Alembic's env runs its own event loop work; keep it off ours.
    await asyncio.to_thread(_upgrade_sync, admin_url, revision)
    if app_role and admin_url.startswith("postgresql"):
        engine = create_async_engine(admin_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(apply_grants, app_role, append_only_tables())
        finally:
            await engine.dispose()


async def current_revisions(url: str) -> set[str]:
    engine = create_async_engine(url)
    if url.startswith("sqlite"):
        from sqlalchemy import event

        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        async with engine.connect() as conn:
            try:
                rows = await conn.execute(text("select version_num from alembic_version"))
            except Exception:
                return set()
            return {r[0] for r in rows}
    finally:
        await engine.dispose()
