"""Replicas agree: a flip on one reaches the others by the bus, or by the reload safety net."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opsgate.audit.base import MemoryAuditor
from opsgate.bus.memory import MemoryBus
from opsgate.db.engine import Database
from opsgate.db.migrate import upgrade
from opsgate.errors import Unavailable
from opsgate.gateway.killswitch.service import TOPIC, Catalog, KillSwitches
from opsgate.gateway.killswitch.settings import KillSwitchSettings

CATALOG = Catalog(frozenset({"ops-default", "other"}), frozenset({"primary"}))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ks.db'}"
    await upgrade(url)
    d = Database(url)
    await d.ensure_tenant("default")
    await d.ensure_tenant("acme")
    yield d
    await d.dispose()


async def _replica(
    db: Database, bus: MemoryBus, reload_seconds: float = 60.0, audit: MemoryAuditor | None = None
) -> KillSwitches:
    return await KillSwitches.start(
        db,
        bus,
        audit or MemoryAuditor(),
        settings=KillSwitchSettings(reload_seconds=reload_seconds),
        operator_tenant="default",
        catalog=CATALOG,
    )


async def _until_refused(ks: KillSwitches, model: str, limit: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        try:
            ks.check(model=model, key_id=None)
        except Unavailable:
            return time.perf_counter() - t0
        await asyncio.sleep(0.005)
    raise AssertionError(f"{model} still served after {limit} s")


async def test_bus_carries_a_flip_to_the_other_replica_at_once(db: Database) -> None:
    bus = MemoryBus()
    audit = MemoryAuditor()
    a, b = await _replica(db, bus, audit=audit), await _replica(db, bus)
    try:
        await a.kill("model", "ops-default", actor="ana", reason="runaway agent")
        # Reload is 60 s here: only the bus can make this fast.
        assert await _until_refused(b, "ops-default", 1.0) < 0.1
        await b.revive("model", "ops-default", actor="ben", reason="agent fixed")
        await asyncio.sleep(0.02)
        a.check(model="ops-default", key_id=None)
        [ev] = [e for e in audit.events if e.action == "killswitch.kill"]
        assert (ev.actor, ev.reason, ev.resource) == (
            "ana",
            "runaway agent",
            "killswitch:model:ops-default",
        )
        assert ev.tenant == "default" and ev.outcome == "success"
    finally:
        await a.close()
        await b.close()


async def test_reload_repairs_a_lost_message(db: Database) -> None:
    # Separate buses: nothing is delivered, like a CLI process on the in-process bus.
    a = await _replica(db, MemoryBus())
    b = await _replica(db, MemoryBus(), reload_seconds=0.1)
    try:
        key = "k-123"
        await a.kill("model", "other", actor="ana", reason="x")
        await a.kill("api_key", key, actor="ana", reason="leaked", tenant="acme")
        assert await _until_refused(b, "other", 2.0) < 0.5
        assert b.is_killed("api_key", key, tenant="acme")
        assert not b.is_killed("api_key", key, tenant="default")
        await a.revive("model", "other", actor="ana", reason="ok")
        await asyncio.sleep(0.35)
        b.check(model="other", key_id=None)
    finally:
        await a.close()
        await b.close()


async def test_events_arriving_during_a_reload_are_kept(db: Database) -> None:
    bus = MemoryBus()
    ks = await _replica(db, bus)
    try:
        load = ks._load

        async def slow_load() -> list:  # type: ignore[type-arg]
            rows = await load()  # the snapshot predates the event below
            await asyncio.sleep(0.05)
            return rows

        ks._load = slow_load  # type: ignore[method-assign]
        reload = asyncio.create_task(ks.reload())
        await asyncio.sleep(0.01)
        await bus.publish(
            TOPIC,
            {
                "op": "kill",
                "scope": "model",
                "target": "other",
                "tenant": None,
                "reason": "r",
                "actor": "x",
                "at": "2026-11-23T10:00:00+00:00",
            },
        )
        await reload
        assert ks.is_killed("model", "other")
    finally:
        await ks.close()


async def test_malformed_events_are_ignored(db: Database) -> None:
    bus = MemoryBus()
    ks = await _replica(db, bus)
    try:
        for bad in (
            {"op": "explode", "scope": "model", "target": "x"},
            {"op": "kill", "scope": "galaxy", "target": "x", "reason": "r", "actor": "a"},
            {
                "op": "kill",
                "scope": "api_key",
                "target": "k",
                "tenant": None,
                "reason": "r",
                "actor": "a",
                "at": "2026-11-23T00:00:00+00:00",
            },
            {
                "op": "kill",
                "scope": "platform",
                "target": "*",
                "tenant": None,
                "reason": 5,
                "actor": "a",
                "at": "2026-11-23T00:00:00+00:00",
            },
            {
                "op": "kill",
                "scope": "platform",
                "target": "*",
                "tenant": None,
                "reason": "r",
                "actor": "a",
                "at": "yesterday",
            },
        ):
            await bus.publish(TOPIC, bad)
        await asyncio.sleep(0.02)
        assert ks.active() == []
        assert ks.ready() == "ok"  # the listener survived
        await bus.publish(
            TOPIC,
            {
                "op": "kill",
                "scope": "platform",
                "target": "*",
                "tenant": None,
                "reason": "r",
                "actor": "a",
                "at": "2026-11-23T00:00:00+00:00",
            },
        )
        await asyncio.sleep(0.02)
        assert ks.is_killed("platform", "*")
    finally:
        await ks.close()


async def test_state_survives_a_restart(db: Database) -> None:
    a = await _replica(db, MemoryBus())
    await a.kill("deployment", "primary", actor="ana", reason="quota exhausted upstream")
    await a.kill("model", "other", actor="ana", reason="x")
    await a.kill("model", "other", actor="ben", reason="updated reason")  # re-kill updates
    await a.close()
    b = await _replica(db, MemoryBus())
    try:
        assert b.is_killed_deployment("primary")
        [m] = [s for s in b.active() if s.scope == "model"]
        assert (m.actor, m.reason) == ("ben", "updated reason")
    finally:
        await b.close()


async def test_check_is_memory_only_and_fast(db: Database) -> None:
    ks = await _replica(db, MemoryBus())
    try:
        for i in range(200):
            await ks.bus.publish(
                TOPIC,
                {
                    "op": "kill",
                    "scope": "api_key",
                    "target": f"k{i}",
                    "tenant": "acme",
                    "reason": "r",
                    "actor": "a",
                    "at": "2026-11-23T00:00:00+00:00",
                },
            )
        await db.dispose()  # no database needed on the hot path
        t0 = time.perf_counter()
        for _ in range(10_000):
            ks.check(model="ops-default", key_id="k-live", tenant="acme")
        assert (time.perf_counter() - t0) / 10_000 < 20e-6
    finally:
        await ks.close()
