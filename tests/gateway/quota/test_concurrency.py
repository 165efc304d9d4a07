"""The reservation guarantee under concurrency, on both backends, and replicas sharing Redis."""

from __future__ import annotations

import asyncio
import random

import pytest

from opsgate.errors import RateLimited
from opsgate.gateway.quota.reservation import Reservation
from opsgate.gateway.quota.service import QuotaService
from tests.gateway.quota.conftest import MakeQuota, principal

N = 50
EST = 0.10
BUDGET = 1.05  # room for 10 estimates, not 11


async def _try(q: QuotaService, est: float = EST) -> Reservation | None:
    try:
        return await q.admit(principal(), model="m", est_tokens=100, est_cost=est)
    except RateLimited:
        return None


async def test_fifty_concurrent_admits_cannot_overshoot_the_budget(make_quota: MakeQuota) -> None:
    """All 50 check the same nearly-empty budget at once: only what fits is reserved.

    Spending checked against `spent` alone would admit all 50 (5x the budget).
    """
    q = await make_quota(defaults={"key": {"budget": {"amount": BUDGET, "period": "month"}}})
    gate = asyncio.Event()

    async def one() -> Reservation | None:
        await gate.wait()
        res = await _try(q)
        if res is not None:
            await asyncio.sleep(random.uniform(0, 0.02))
            await q.settle(res, tokens_in=50, tokens_out=50, cost=EST)  # the worst case
        return res

    tasks = [asyncio.create_task(one()) for _ in range(N)]
    await asyncio.sleep(0.01)
    gate.set()
    admitted = [r for r in await asyncio.gather(*tasks) if r is not None]
    spent, held = await q.budget_state(principal(), "key")
    assert len(admitted) == 10
    assert held == 0
    assert spent <= BUDGET + EST + 1e-9  # the promised bound: at most one estimate over
    assert spent == pytest.approx(1.0)  # in fact none, as actual <= estimate


async def test_sustained_concurrency_stays_within_budget(make_quota: MakeQuota) -> None:
    """200 requests through 50 workers; actual cost is random up to the estimate, so
    refunds let more requests in, yet the total never passes the budget."""
    q = await make_quota(defaults={"key": {"budget": {"amount": BUDGET}}})
    rng = random.Random(7)
    todo = list(range(200))
    admitted = 0

    async def worker() -> None:
        nonlocal admitted
        while todo:
            todo.pop()
            res = await _try(q)
            if res is None:
                await asyncio.sleep(0.003)  # a client backing off
                continue
            admitted += 1
            await asyncio.sleep(rng.uniform(0, 0.005))
            await q.settle(res, tokens_in=1, tokens_out=1, cost=rng.uniform(0, EST))

    await asyncio.gather(*(worker() for _ in range(N)))
    spent, held = await q.budget_state(principal(), "key")
    assert held == 0
    assert admitted > 10
    assert spent <= BUDGET + EST


@pytest.mark.redis
async def test_two_replicas_share_one_limit(redis_url: str, quota_prefix: str) -> None:
    from opsgate.gateway.quota.settings import QuotaSettings

    cfg = QuotaSettings.model_validate(
        {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": quota_prefix,
            "defaults": {"key": {"rpm": 10, "concurrency": 3, "budget": {"amount": 1.0}}},
        }
    )
    a, b = QuotaService.from_settings(cfg), QuotaService.from_settings(cfg)
    try:
        held = [
            await (a if i % 2 else b).admit(principal(), model="m", est_tokens=1, est_cost=0.3)
            for i in range(3)
        ]
        for q in (a, b):
            with pytest.raises(RateLimited) as exc:
                await q.admit(principal(), model="m", est_tokens=1, est_cost=0.01)
            assert "concurrent" in exc.value.detail
        # Settled on the other replica than the one that admitted.
        for i, res in enumerate(held):
            await (b if i % 2 else a).settle(res, tokens_in=1, tokens_out=1, cost=0.3)
        assert await a.budget_state(principal(), "key") == pytest.approx((0.9, 0.0))
        passed = 3
        for i in range(20):
            try:
                res = await (a if i % 2 else b).admit(
                    principal(), model="m", est_tokens=1, est_cost=0
                )
            except RateLimited as exc:
                assert "requests per minute" in exc.detail
                continue
            passed += 1
            await (b if i % 2 else a).release(res)
        assert passed == 10
    finally:
        await a.close()
        await b.close()


@pytest.mark.redis
async def test_fifty_concurrent_admits_across_two_replicas(
    redis_url: str, quota_prefix: str
) -> None:
    from opsgate.gateway.quota.settings import QuotaSettings

    cfg = QuotaSettings.model_validate(
        {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": quota_prefix,
            "defaults": {"key": {"budget": {"amount": BUDGET}}},
        }
    )
    replicas = [QuotaService.from_settings(cfg), QuotaService.from_settings(cfg)]
    try:
        results = await asyncio.gather(*(_try(replicas[i % 2]) for i in range(N)))
        admitted = [r for r in results if r is not None]
        assert len(admitted) == 10
        await asyncio.gather(
            *(
                replicas[i % 2].settle(r, tokens_in=1, tokens_out=1, cost=EST)
                for i, r in enumerate(admitted)
            )
        )
        spent, held = await replicas[0].budget_state(principal(), "key")
        assert held == 0 and spent <= BUDGET
    finally:
        for q in replicas:
            await q.close()
