"""Row-level security on the real PostgreSQL: catalog checks and a cross-tenant matrix."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from opsgate.db.engine import Database
from opsgate.db.rls import enable_tenant_rls
from opsgate.settings import Settings
from tests import services
from tests.conftest import migrated

pytestmark = pytest.mark.postgres


async def _admin(db: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=services.PG_HOST, port=services.PG_PORT, user=services.PG_ADMIN_USER, database=db
    )


async def test_every_tenant_table_has_forced_rls(pg_settings: Settings, pg_database: str) -> None:
    await migrated(pg_settings)
    conn = await _admin(pg_database)
    try:
        rows = await conn.fetch(
            """
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policies p where p.tablename = c.relname) as policies
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind = 'r'
              and exists (select 1 from information_schema.columns col
                          where col.table_name = c.relname and col.column_name = 'tenant_id')
            """
        )
        for r in rows:
            assert r["relrowsecurity"] and r["relforcerowsecurity"], r["relname"]
            assert r["policies"] >= 1, r["relname"]
        role = await conn.fetchrow(
            "select rolsuper, rolbypassrls from pg_roles where rolname = $1",
            pg_settings.database.app_role,
        )
        assert role is not None and not role["rolsuper"] and not role["rolbypassrls"]
        owned = await conn.fetchval(
            "select count(*) from pg_tables where tableowner = $1", pg_settings.database.app_role
        )
        assert owned == 0
    finally:
        await conn.close()


@pytest.fixture
async def notes_db(pg_settings: Settings, pg_database: str) -> Database:
    """A tenant table made with the same helper the migrations use, and two tenants."""
    await migrated(pg_settings)
    admin = Database(pg_settings.database_admin_url)
    async with admin.engine.begin() as conn:
        await conn.execute(
            text(
                "create table notes (tenant_id varchar(64) not null references tenants(id),"
                " id int not null, body text, primary key (tenant_id, id))"
            )
        )
        await conn.run_sync(enable_tenant_rls, "notes")
        await conn.execute(
            text(
                f"grant select, insert, update, delete on notes to {pg_settings.database.app_role}"
            )
        )
        await conn.execute(
            text(
                "insert into tenants(id, name, created_at) values"
                " ('ta', 'A', now()), ('tb', 'B', now())"
            )
        )
    await admin.dispose()
    db = Database(pg_settings.database_url)
    async with db.session("ta") as s:
        await s.execute(text("insert into notes values ('ta', 1, 'a-secret')"))
    async with db.session("tb") as s:
        await s.execute(text("insert into notes values ('tb', 1, 'b-secret')"))
    return db


async def test_cross_tenant_matrix(notes_db: Database) -> None:
    db = notes_db
    async with db.session("ta") as s:
        rows = (await s.execute(text("select tenant_id, body from notes"))).all()
        assert rows == [("ta", "a-secret")]
        # hand-written query naming the other tenant still sees nothing
        assert (await s.execute(text("select * from notes where tenant_id='tb'"))).all() == []
        upd = await s.execute(text("update notes set body='x' where tenant_id='tb'"))
        assert upd.rowcount == 0  # type: ignore[attr-defined]
        dele = await s.execute(text("delete from notes where tenant_id='tb'"))
        assert dele.rowcount == 0  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="row-level security"):
        async with db.session("ta") as s:
            await s.execute(text("insert into notes values ('tb', 2, 'planted')"))
    with pytest.raises(Exception, match="row-level security"):
        async with db.session("ta") as s:
            await s.execute(text("update notes set tenant_id='tb' where id=1"))
    async with db.session("tb") as s:
        assert (await s.execute(text("select body from notes"))).scalars().all() == ["b-secret"]
    await db.dispose()


async def test_no_tenant_set_sees_nothing(notes_db: Database) -> None:
    async with notes_db.session(None) as s:
        assert (await s.execute(text("select count(*) from notes"))).scalar() == 0
    async with notes_db.engine.connect() as conn:  # raw connection, no setting at all
        assert (await conn.execute(text("select count(*) from notes"))).scalar() == 0
    await notes_db.dispose()


async def test_tenant_setting_never_leaks_across_pooled_requests(notes_db: Database) -> None:
    async def one(tenant: str) -> None:
        for _ in range(20):
            async with notes_db.session(tenant) as s:
                seen = (await s.execute(text("select distinct tenant_id from notes"))).scalars()
                assert set(seen) <= {tenant}
            async with notes_db.engine.connect() as conn:
                leaked = (
                    await conn.execute(text("select current_setting('app.tenant_id', true)"))
                ).scalar()
                assert not leaked

    await asyncio.gather(*(one(t) for t in ["ta", "tb"] * 8))
    await notes_db.dispose()
