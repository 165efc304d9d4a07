"""Event bus: in-process and Redis (two replicas), ordering, reconnect, latency."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from opsgate.bus.base import EventBus
from opsgate.bus.memory import MemoryBus
from opsgate.bus.redis import RedisBus


async def _collect(
    bus: EventBus, topic: str, n: int, out: list[dict[str, Any]], ready: asyncio.Event
) -> None:
    it = bus.subscribe(topic)
    first = asyncio.ensure_future(it.__anext__())
    ready.set()
    out.append(await first)
    async for ev in it:
        out.append(ev)
        if len(out) >= n:
            break
    await it.aclose()  # type: ignore[attr-defined]


async def test_memory_bus_fanout_in_order() -> None:
    bus = MemoryBus()
    a: list[dict[str, Any]] = []
    b: list[dict[str, Any]] = []
    ra, rb = asyncio.Event(), asyncio.Event()
    ta = asyncio.create_task(_collect(bus, "t", 5, a, ra))
    tb = asyncio.create_task(_collect(bus, "t", 5, b, rb))
    await ra.wait()
    await rb.wait()
    await asyncio.sleep(0)
    for i in range(5):
        await bus.publish("t", {"i": i})
        await bus.publish("other", {"i": -1})
    await asyncio.wait_for(asyncio.gather(ta, tb), 5)
    assert [e["i"] for e in a] == [e["i"] for e in b] == list(range(5))
    assert not bus._subs["t"]  # unsubscribed on close


@pytest.fixture
async def redis_pair(redis_url: str) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    a, b = RedisBus(redis_url, prefix), RedisBus(redis_url, prefix)
    await a.start()
    await b.start()
    await asyncio.wait_for(asyncio.gather(a.connected.wait(), b.connected.wait()), 5)
    yield a, b
    await a.close()
    await b.close()


async def _wait_subscribed(r: aioredis.Redis, channel: str, n: int = 1) -> None:
    for _ in range(200):
        counts = dict(await r.pubsub_numsub(channel))
        if counts.get(channel.encode(), 0) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("subscription never reached Redis")


@pytest.mark.redis
async def test_two_replicas_see_each_others_events(redis_pair: tuple[RedisBus, RedisBus]) -> None:
    a, b = redis_pair
    got: list[dict[str, Any]] = []
    ready = asyncio.Event()
    task = asyncio.create_task(_collect(b, "killswitch.changed", 20, got, ready))
    await ready.wait()
    await _wait_subscribed(a.redis, f"{a.prefix}.killswitch.changed")
    for i in range(20):
        await a.publish("killswitch.changed", {"i": i})
    await asyncio.wait_for(task, 5)
    assert [e["i"] for e in got] == list(range(20))


@pytest.mark.redis
async def test_publish_to_receive_latency(redis_pair: tuple[RedisBus, RedisBus]) -> None:
    a, b = redis_pair
    lat: list[float] = []
    it = b.subscribe("lat")
    nxt = asyncio.ensure_future(it.__anext__())
    await _wait_subscribed(a.redis, f"{a.prefix}.lat")
    for _ in range(200):
        t0 = time.perf_counter()
        await a.publish("lat", {"t": t0})
        await asyncio.wait_for(nxt, 2)
        lat.append(time.perf_counter() - t0)
        nxt = asyncio.ensure_future(it.__anext__())
    nxt.cancel()
    lat.sort()
    p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
    print(f"redis bus publish->receive p50={p50 * 1e3:.2f} ms p99={p99 * 1e3:.2f} ms")
    assert p99 < 1.0  # kill switches must reach every replica within 1 s


@pytest.mark.redis
async def test_reconnects_after_connection_killed(redis_pair: tuple[RedisBus, RedisBus]) -> None:
    a, b = redis_pair
    it = b.subscribe("re")
    nxt = asyncio.ensure_future(it.__anext__())
    await _wait_subscribed(a.redis, f"{a.prefix}.re")
    await a.redis.client_kill_filter(_type="pubsub")
    got = None
    for _ in range(100):  # re-subscription takes a backoff step
        await a.publish("re", {"ok": True})
        done, _ = await asyncio.wait({nxt}, timeout=0.1)
        if done:
            got = nxt.result()
            break
    assert got == {"ok": True}
