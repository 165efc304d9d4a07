"""The per-tenant guard cache: one rule read at a time, stale-while-reading, invalidation wins."""

from __future__ import annotations

import asyncio

import pytest

from opsgate.guard.custom import CustomRule
from opsgate.guard.service import GuardService
from opsgate.guard.settings import GuardSettings

RULE = CustomRule(name="p", entity="PROJECT", pattern=r"PRJ-\d{4}")


class Counting(GuardService):
    def __init__(self, ttl: float) -> None:
        super().__init__(GuardSettings(rules_cache_seconds=ttl), hash_key=b"k" * 32)
        self.reads = 0
        self.rules: list[CustomRule] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def custom_rules(self, tenant: str) -> list[CustomRule]:
        self.reads += 1
        rules = list(self.rules)
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("database down")
        return rules


async def test_concurrent_misses_share_one_read() -> None:
    svc = Counting(ttl=60)
    svc.gate.clear()
    waiters = [asyncio.create_task(svc.guard_for("t")) for _ in range(50)]
    await asyncio.sleep(0.01)
    svc.gate.set()
    guards = await asyncio.gather(*waiters)
    assert svc.reads == 1 and all(g is guards[0] for g in guards)


async def test_expired_entry_serves_while_one_read_refreshes() -> None:
    svc = Counting(ttl=0)
    first = await svc.guard_for("t")
    svc.rules = [RULE]
    svc.gate.clear()
    stale = await asyncio.gather(*(svc.guard_for("t") for _ in range(20)))
    assert all(g is first for g in stale) and svc.reads == 2  # one refresh in flight
    svc.gate.set()
    await asyncio.sleep(0.05)
    fresh = await svc.guard_for("t")
    assert fresh is not first
    assert [f.type for f in fresh.scan("see PRJ-1234").findings] == ["CUSTOM_PROJECT"]


async def test_a_rule_change_overtakes_a_read_in_flight() -> None:
    svc = Counting(ttl=60)
    svc.gate.clear()
    before = asyncio.create_task(svc.guard_for("t"))  # reads the old (empty) rule set
    await asyncio.sleep(0.01)
    svc.rules = [RULE]
    svc._invalidate("t")  # what a rule change (API or event bus) does
    svc.gate.set()
    await before
    now = await svc.guard_for("t")
    assert [f.type for f in now.scan("PRJ-9999").findings] == ["CUSTOM_PROJECT"]


async def test_a_failed_read_is_not_cached() -> None:
    svc = Counting(ttl=60)
    svc.fail = True
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await svc.guard_for("t")
    assert svc.reads == 2
    svc.fail = False
    await svc.guard_for("t")
    await svc.guard_for("t")
    assert svc.reads == 3
