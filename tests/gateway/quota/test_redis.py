"""Redis specifics on the real Redis: script reload, key hygiene, outages (fail closed/open)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from opsgate.errors import RateLimited, Unavailable
from opsgate.gateway.quota.redis_backend import RedisQuotaBackend
from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.quota.settings import QuotaSettings
from tests.gateway.quota.conftest import principal

pytestmark = pytest.mark.redis


class TcpProxy:
    """Forwards 127.0.0.1:<port> to Redis until `cut()`; then connections are refused."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.server: asyncio.Server | None = None
        self.conns: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.conns += [w, uw]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for c in self.conns:
            c.close()
        await self.server.wait_closed()


def _settings(url: str, prefix: str, **over: Any) -> QuotaSettings:
    cfg: dict[str, Any] = {
        "backend": "redis",
        "redis_url": url,
        "key_prefix": prefix,
        "redis_timeout_seconds": 0.3,
        "defaults": {"key": {"rpm": 100, "concurrency": 5, "budget": {"amount": 5.0}}},
    }
    cfg.update(over)
    return QuotaSettings.model_validate(cfg)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_scripts_are_reloaded_after_script_flush(
    redis_url: str, quota_prefix: str, raw: aioredis.Redis
) -> None:
    q = QuotaService.from_settings(_settings(redis_url, quota_prefix))
    try:
        await q.settle(
            await q.admit(principal(), model="m", est_tokens=1, est_cost=0.1),
            tokens_in=1,
            tokens_out=1,
            cost=0.1,
        )
        await raw.script_flush()
        res = await q.admit(principal(), model="m", est_tokens=1, est_cost=0.1)
        await q.settle(res, tokens_in=1, tokens_out=1, cost=0.1)
        assert await q.budget_state(principal(), "key") == pytest.approx((0.2, 0.0))
    finally:
        await q.close()


async def test_keys_are_tenant_hash_tagged_and_expire(
    redis_url: str, quota_prefix: str, raw: aioredis.Redis
) -> None:
    q = QuotaService.from_settings(_settings(redis_url, quota_prefix))
    try:
        held = await q.admit(principal(), model="m", est_tokens=1, est_cost=0.1)
        keys = sorted([k.decode() async for k in raw.scan_iter(match=f"{quota_prefix}:*")])
        assert keys, "admit wrote nothing"
        for k in keys:
            assert k.startswith(f"{quota_prefix}:{{default}}:"), k
            ttl = await raw.pttl(k)
            assert ttl > 0, f"{k} has no expiry"
        # Period keys outlive the period only by the lease plus an hour.
        budget_key = next(k for k in keys if ":b:" in k)
        assert await raw.ttl(budget_key) <= 32 * 86_400
        await q.settle(held, tokens_in=1, tokens_out=1, cost=0.1)
    finally:
        await q.close()


async def test_names_with_separators_never_share_keys(redis_url: str, quota_prefix: str) -> None:
    assert isinstance(QuotaService, type)
    q = QuotaService.from_settings(
        _settings(redis_url, quota_prefix, defaults={"user": {"concurrency": 1}})
    )
    try:
        # "a:rpm" vs "a" and tenant-like braces must be different subjects.
        await q.admit(principal("a:cc", None), model="m", est_tokens=1, est_cost=0)
        await q.admit(principal("a", None), model="m", est_tokens=1, est_cost=0)
        await q.admit(principal("{default}", None), model="m", est_tokens=1, est_cost=0)
        with pytest.raises(RateLimited):
            await q.admit(principal("a", None), model="m", est_tokens=1, est_cost=0)
        assert isinstance(q.backend, RedisQuotaBackend)
    finally:
        await q.close()


async def test_redis_down_fails_closed_by_default(quota_prefix: str) -> None:
    # A port nothing listens on.
    q = QuotaService.from_settings(_settings("redis://127.0.0.1:1/0", quota_prefix))
    try:
        t0 = time.perf_counter()
        with pytest.raises(Unavailable) as exc:
            await q.admit(principal(), model="m", est_tokens=1, est_cost=0.1)
        assert time.perf_counter() - t0 < 1.0
        assert exc.value.status == 503 and exc.value.headers["Retry-After"] == "1"
        assert q.metrics.backend_errors.labels("admit", "refused")._value.get() == 1
        assert (await q.ready()).startswith("backend unreachable")
    finally:
        await q.close()


async def test_redis_down_fail_open_admits_unlimited(quota_prefix: str) -> None:
    q = QuotaService.from_settings(
        _settings("redis://127.0.0.1:1/0", quota_prefix, on_backend_error="open")
    )
    try:
        res = await q.admit(principal(), model="m", est_tokens=1, est_cost=0.1)
        assert res.degraded
        await q.settle(res, tokens_in=1, tokens_out=1, cost=0.1)  # a no-op, no error
        assert q.metrics.backend_errors.labels("admit", "admitted")._value.get() == 1
        assert await q.ready() == "ok"
    finally:
        await q.close()


async def test_outage_mid_traffic_then_recovery(redis_url: str, quota_prefix: str) -> None:
    proxy = TcpProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    port = await proxy.start()
    q = QuotaService.from_settings(_settings(f"redis://127.0.0.1:{port}/0", quota_prefix))
    try:
        res = await q.admit(principal(), model="m", est_tokens=1, est_cost=0.1)
        await proxy.cut()
        # Settling during the outage never raises (the lease frees the slot later).
        await q.settle(res, tokens_in=1, tokens_out=1, cost=0.1)
        with pytest.raises(Unavailable):
            await q.admit(principal(), model="m", est_tokens=1, est_cost=0.1)
    finally:
        await q.close()
    # Redis itself kept the state: a new client sees the reservation still held.
    q2 = QuotaService.from_settings(_settings(redis_url, quota_prefix))
    try:
        assert await q2.budget_state(principal(), "key") == pytest.approx((0.0, 0.1))
    finally:
        await q2.close()


async def test_retry_after_matches_between_backends(redis_url: str, quota_prefix: str) -> None:
    limits = {"defaults": {"key": {"rpm": 4}}}
    waits = []
    for backend in ("memory", "redis"):
        q = QuotaService.from_settings(
            _settings(redis_url, quota_prefix, backend=backend, **limits)
        )
        try:
            for _ in range(4):
                await q.admit(principal(), model="m", est_tokens=1, est_cost=0)
            with pytest.raises(RateLimited) as exc:
                await q.admit(principal(), model="m", est_tokens=1, est_cost=0)
            waits.append(exc.value.retry_after)
        finally:
            await q.close()
    assert waits == [15, 15]
