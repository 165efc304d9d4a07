"""The database handle: async engine, tenant-bound sessions, health check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.pool import ConnectionPoolEntry

from opsgate.db.base import Tenant, TenantScoped
from opsgate.errors import Forbidden

TENANT_KEY = "opsgate_tenant_id"


# WAL lets readers run beside the single writer; synchronous=FULL makes a committed
# transaction durable across power loss (the audit log relies on this). Every SQLite
# connection OpsGate opens runs these (the engine's, and the audit writer's own).
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cur.execute(pragma)
    cur.close()


def _scope_to_tenant(state: ORMExecuteState) -> None:
    tenant = state.session.info.get(TENANT_KEY)
    if tenant is None or not state.is_select:
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant,
            include_aliases=True,
        )
    )


def _check_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    tenant = session.info.get(TENANT_KEY)
    if tenant is None:
        return
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, TenantScoped) and obj.tenant_id != tenant:
            raise Forbidden("row belongs to another tenant")


class Database:
    """Owns the engine. `session(tenant)` is the only way code gets a session."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions.class_.sync_session_class, "do_orm_execute", _scope_to_tenant)
        event.listen(self._sessions.class_.sync_session_class, "before_flush", _check_flush)

    @asynccontextmanager
    async def session(self, tenant_id: str | None) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, bound to `tenant_id` (None: platform scope).

        On PostgreSQL the tenant goes into the transaction-local setting `app.tenant_id`
        that the row-level security policies read; it never outlives the transaction, so
        a pooled connection cannot carry it into another request.
        """
        async with self._sessions() as session, session.begin():
            session.info[TENANT_KEY] = tenant_id
            if not self.is_sqlite:
                await session.execute(
                    text("select set_config('app.tenant_id', :t, true)"),
                    {"t": tenant_id or ""},
                )
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("select 1"))

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self.session(None) as s:
            row = await s.execute(
                select(Tenant.status).where(Tenant.id == tenant_id, Tenant.status == "active")
            )
            return row.first() is not None

    async def ensure_tenant(self, tenant_id: str, name: str | None = None) -> None:
        async with self.session(None) as s:
            if await s.get(Tenant, tenant_id) is None:
                s.add(Tenant(id=tenant_id, name=name or tenant_id))

    async def dispose(self) -> None:
        await self.engine.dispose()


def run_sync_connection(conn: Connection, fn: Any) -> Any:
    return fn(conn)
