"""The usage recorder: non-blocking, batched, bounded, and never storing text or secrets."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from opsgate.db.engine import Database
from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.quota.settings import QuotaSettings
from opsgate.gateway.usage.models import UsageRow
from opsgate.gateway.usage.recorder import UsageRecord, UsageRecorder, decode_groups
from opsgate.gateway.usage.settings import UsageSettings
from tests.gateway.quota.conftest import principal

CANARY = "sk-CANARY-4f1c9e0b7d2a"


def rec(**over: Any) -> UsageRecord:
    base: dict[str, Any] = dict(
        tenant="default",
        principal_id="alice",
        key_id="k1",
        groups=("sre", "dev"),
        model="ops-default",
        deployment="primary",
        route="ops-default->primary",
        tokens_in=10,
        tokens_out=20,
        cost=0.001,
        latency_ms=12.5,
        status="success",
        request_id="req-1",
    )
    base.update(over)
    return UsageRecord(**base)


async def _rows(db: Database, tenant: str = "default") -> list[UsageRow]:
    async with db.session(tenant) as s:
        return list((await s.execute(select(UsageRow).order_by(UsageRow.ts))).scalars())


def _count(registry: CollectorRegistry, result: str) -> float:
    v = registry.get_sample_value("opsgate_usage_records_total", {"result": result})
    return float(v or 0)


async def test_records_are_written_in_batches(sqlite_db: Database) -> None:
    reg = CollectorRegistry()
    r = UsageRecorder.start(sqlite_db, UsageSettings(batch_linger_ms=5), registry=reg)
    try:
        t0 = time.perf_counter()
        for i in range(300):
            r.record(rec(request_id=f"req-{i}", tenant="acme" if i % 3 == 0 else "default"))
        assert time.perf_counter() - t0 < 0.05  # queued, not written inline
        await r.flush()
    finally:
        await r.close()
    rows = await _rows(sqlite_db)
    assert len(rows) == 200 and len(await _rows(sqlite_db, "acme")) == 100
    row = rows[0]
    assert (row.principal_id, row.key_id, row.model, row.deployment) == (
        "alice",
        "k1",
        "ops-default",
        "primary",
    )
    assert (row.tokens_in, row.tokens_out, row.status, row.stream) == (10, 20, "success", False)
    assert decode_groups(row.groups) == ["dev", "sre"]
    assert _count(reg, "written") == 300


async def test_sqlite_writer_rows_read_back_like_session_rows(sqlite_db: Database) -> None:
    """A SQLite file gets the writer's own connection; the rows must be indistinguishable
    from what the SQLAlchemy session path writes (timestamps, booleans, NULLs)."""
    ts = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    r = UsageRecorder.start(sqlite_db, UsageSettings(batch_linger_ms=0))
    try:
        assert r._sqlite is not None
        r.record(rec(ts=ts, stream=True, key_id=None, request_id="own-connection"))
        await r.flush()
        r._sqlite = None  # the session path, as for PostgreSQL and in-memory SQLite
        r.record(rec(ts=ts, stream=True, key_id=None, request_id="session"))
        await r.flush()
    finally:
        await r.close()
    rows = await _rows(sqlite_db)
    assert sorted(x.request_id or "" for x in rows) == ["own-connection", "session"]
    a, b = ({k: v for k, v in vars(x).items() if k not in {"id", "request_id", "_sa_instance_state"}} for x in rows)  # fmt: skip
    assert a == b and a["stream"] is True and a["key_id"] is None
    assert a["ts"].replace(tzinfo=UTC) == ts and a["day"] == "2026-03-04"


async def test_day_is_the_utc_day(sqlite_db: Database) -> None:
    r = UsageRecorder.start(sqlite_db, UsageSettings(batch_linger_ms=0))
    late = datetime(2026, 11, 23, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    r.record(rec(ts=late))
    await r.close()
    [row] = await _rows(sqlite_db)
    assert row.day == "2026-11-24"


async def test_full_queue_drops_instead_of_blocking(sqlite_db: Database) -> None:
    reg = CollectorRegistry()
    r = UsageRecorder(sqlite_db, UsageSettings(queue_max=100), registry=reg)  # writer not started
    for _ in range(150):
        r.record(rec())
    assert r.backlog == 100 and _count(reg, "dropped") == 50
    assert r.ready() == "backlog"


async def test_a_failing_tenant_does_not_block_the_others(sqlite_db: Database) -> None:
    reg = CollectorRegistry()
    r = UsageRecorder.start(sqlite_db, UsageSettings(batch_linger_ms=5), registry=reg)
    r.record(rec(tenant="no-such-tenant"))  # foreign key violation, every retry
    r.record(rec())
    r.record(rec(tenant="acme", cost=float("nan"), latency_ms=-3, tokens_in=-1))
    await asyncio.wait_for(r.flush(), 10)
    await r.close()
    assert _count(reg, "dropped") == 1 and _count(reg, "written") == 2
    [acme] = await _rows(sqlite_db, "acme")
    assert (acme.cost, acme.latency_ms, acme.tokens_in) == (0.0, 0.0, 0)


async def test_free_text_fields_are_constrained(sqlite_db: Database) -> None:
    r = UsageRecorder.start(sqlite_db, UsageSettings(batch_linger_ms=0))
    r.record(
        rec(
            status=f"upstream said: {CANARY} please",
            route=f"m->d;{CANARY}\nnext",
            provider="open ai!",
            operation="chat; drop table",
        )
    )
    await r.close()
    [row] = await _rows(sqlite_db)
    assert row.status == "other" and row.provider == "other" and row.operation == "other"
    assert "\n" not in row.route and " " not in row.route.split(";")[0]


def test_the_ledger_has_no_column_for_text_or_credentials() -> None:
    # Adding a column here is a security review, not a refactor: prompts, responses,
    # headers and keys must never be stored with usage.
    assert set(UsageRow.__table__.columns.keys()) == {
        "tenant_id",
        "id",
        "ts",
        "day",
        "request_id",
        "trace_id",
        "principal_id",
        "key_id",
        "groups",
        "model",
        "deployment",
        "provider",
        "operation",
        "route",
        "tokens_in",
        "tokens_out",
        "cost",
        "latency_ms",
        "status",
        "stream",
    }


async def test_memory_budgets_resume_from_recorded_spend(sqlite_db: Database) -> None:
    r = UsageRecorder.start(sqlite_db, UsageSettings(batch_linger_ms=0))
    now = datetime.now(UTC)
    for cost in (0.5, 0.25):
        r.record(rec(cost=cost, key_id="k-alice", groups=("sre",), ts=now))
    r.record(rec(cost=9.0, key_id="k-alice", ts=now - timedelta(days=40)))  # older period
    await r.close()
    cfg = QuotaSettings.model_validate(
        {
            "defaults": {"key": {"budget": {"amount": 5}}},
            "teams": {"sre": {"budget": {"amount": 2, "period": "day"}}},
        }
    )
    q = await QuotaService.start(cfg, db=sqlite_db)
    p = principal(groups=("sre",))
    assert await q.budget_state(p, "key") == (0.75, 0.0)
    assert await q.budget_state(p, "team") == (0.75, 0.0)
    assert await q.budget_state(p, "tenant") is None
