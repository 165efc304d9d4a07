"""Aggregation: the same answers on SQLite and PostgreSQL; tenant isolation on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from opsgate.db.engine import Database
from opsgate.db.migrate import upgrade
from opsgate.gateway.usage.query import aggregate, total
from opsgate.gateway.usage.recorder import UsageRecorder
from opsgate.gateway.usage.settings import UsageSettings
from opsgate.settings import Settings
from tests import services
from tests.conftest import _admin_exec, migrated
from tests.gateway.usage.test_recorder import rec

APP_ROLE = "opsgate_app_test"
DAY1 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 21, 23, 59, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
        await upgrade(url)
        d = Database(url)
    else:
        # Made here, not through pg_settings: async fixtures cannot be chosen at run time.
        services.require_postgres()
        name = services.unique_name("opsgate_t")
        await _admin_exec(f'CREATE DATABASE "{name}"')
        request.addfinalizer(
            lambda: asyncio.run(_admin_exec(f'DROP DATABASE "{name}" WITH (FORCE)'))
        )
        await upgrade(services.pg_url(name), APP_ROLE)
        d = Database(services.pg_url(name, APP_ROLE))  # the app role, under row-level security
    for t in ("default", "acme"):
        await d.ensure_tenant(t)
    yield d
    await d.dispose()


async def _fill(db: Database) -> None:
    r = UsageRecorder.start(db, UsageSettings(batch_linger_ms=0))
    r.record(rec(ts=DAY1, principal_id="alice", groups=("sre",), model="a", cost=0.5))
    r.record(
        rec(
            ts=DAY1,
            principal_id="bob",
            groups=("sre", "dev"),
            model="a",
            cost=0.25,
            status="rate_limited",
            latency_ms=30,
        )
    )
    r.record(rec(ts=DAY2, principal_id="alice", groups=(), model="b", cost=1.0, tokens_in=100))
    r.record(rec(ts=DAY2, tenant="acme", principal_id="eve", model="a", cost=99.0))
    await r.close()


async def test_group_by_each_dimension(db: Database) -> None:
    await _fill(db)
    window = {"since": DAY1 - timedelta(hours=1), "until": DAY2 + timedelta(hours=1)}

    by_day = await aggregate(db, "default", group_by="day", **window)
    assert [(b.key, b.requests, b.errors, round(b.cost, 6)) for b in by_day] == [
        ("2026-11-20", 2, 1, 0.75),
        ("2026-11-21", 1, 0, 1.0),
    ]
    assert by_day[0].latency_ms_avg == pytest.approx((12.5 + 30) / 2)

    by_principal = await aggregate(db, "default", group_by="principal", **window)
    assert [(b.key, b.requests, round(b.cost, 6)) for b in by_principal] == [
        ("alice", 2, 1.5),
        ("bob", 1, 0.25),
    ]
    assert by_principal[0].tokens_in == 110

    by_model = await aggregate(db, "default", group_by="model", **window)
    assert [(b.key, b.requests) for b in by_model] == [("b", 1), ("a", 2)]

    by_team = await aggregate(db, "default", group_by="team", **window)
    assert {b.key: b.requests for b in by_team} == {"sre": 2, "dev": 1, "(none)": 1}
    assert total(by_team, "team") is None
    t = total(by_day, "day")
    assert t is not None and t.requests == 3 and t.cost == pytest.approx(1.75)


async def test_filters_and_half_open_range(db: Database) -> None:
    await _fill(db)
    only_day1 = await aggregate(db, "default", group_by="day", since=DAY1, until=DAY2)
    assert [b.key for b in only_day1] == ["2026-11-20"]
    mine = await aggregate(
        db, "default", group_by="model", since=DAY1, until=DAY2 + timedelta(1), principal_id="bob"
    )
    assert [(b.key, b.requests) for b in mine] == [("a", 1)]
    # Naive datetimes are UTC.
    naive = await aggregate(
        db,
        "default",
        group_by="day",
        since=DAY2.replace(tzinfo=None),
        until=(DAY2 + timedelta(minutes=1)).replace(tzinfo=None),
    )
    assert [b.key for b in naive] == ["2026-11-21"]


async def test_tenants_never_see_each_other(db: Database) -> None:
    await _fill(db)
    window = {"since": DAY1 - timedelta(days=1), "until": DAY2 + timedelta(days=1)}
    acme = await aggregate(db, "acme", group_by="principal", **window)
    assert [b.key for b in acme] == ["eve"]
    default = await aggregate(db, "default", group_by="principal", **window)
    assert "eve" not in {b.key for b in default}


@pytest.mark.postgres
async def test_postgres_ledger_is_append_only_and_row_level_secured(
    pg_settings: Settings,
) -> None:
    await migrated(pg_settings)
    db = Database(pg_settings.database_url)
    try:
        await _fill_default_only(db)
        with pytest.raises(Exception, match=r"permission denied|append-only"):
            async with db.session("default") as s:
                await s.execute(text("update usage_records set cost = 0"))
        with pytest.raises(Exception, match=r"permission denied|append-only"):
            async with db.session("default") as s:
                await s.execute(text("delete from usage_records"))
        async with db.session(None) as s:  # no tenant: no rows
            assert (await s.execute(text("select count(*) from usage_records"))).scalar() == 0
        async with db.session("acme") as s:
            assert (await s.execute(text("select count(*) from usage_records"))).scalar() == 0
        with pytest.raises(Exception, match="row-level security"):
            async with db.session("acme") as s:
                await s.execute(
                    text(
                        "insert into usage_records (tenant_id, id, ts, day, principal_id, groups,"
                        " model, operation, route, tokens_in, tokens_out, cost, latency_ms,"
                        " status, stream) values ('default', 'x', now(), '2026-11-23', 'p', '',"
                        " 'm', 'chat', '', 0, 0, 0, 0, 'success', false)"
                    )
                )
    finally:
        await db.dispose()


async def _fill_default_only(db: Database) -> None:
    await db.ensure_tenant("acme")
    r = UsageRecorder.start(db, UsageSettings(batch_linger_ms=0))
    r.record(rec(ts=DAY1))
    await r.close()
