"""Each dimension on both backends: RPM, TPM, concurrency, budgets, Retry-After, atomicity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from opsgate.errors import RateLimited
from opsgate.gateway.quota.reservation import period_bounds
from tests.gateway.quota.conftest import MakeQuota, principal


def key_limits(**lim: object) -> dict[str, object]:
    return {"defaults": {"key": lim}}


async def test_rpm_allows_limit_then_429_with_exact_retry_after(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(rpm=5))
    p = principal()
    for _ in range(5):
        await q.release(await q.admit(p, model="m", est_tokens=1, est_cost=0))
    with pytest.raises(RateLimited) as exc:
        await q.admit(p, model="m", est_tokens=1, est_cost=0)
    err = exc.value
    # One request is earned back every 60/5 = 12 s.
    assert 11 <= err.retry_after <= 12
    assert err.headers["Retry-After"] == str(err.retry_after)
    assert err.code == "rate_limit_exceeded"
    assert "5 requests per minute" in err.detail and "API key 'k-alice'" in err.detail
    # Another key is a different subject.
    await q.admit(principal("bob", "k-bob"), model="m", est_tokens=1, est_cost=0)


async def test_tpm_reserves_estimate_and_settle_refunds_the_difference(
    make_quota: MakeQuota,
) -> None:
    q = await make_quota(**key_limits(tpm=1000))
    p = principal()
    first = await q.admit(p, model="m", est_tokens=600, est_cost=0)
    with pytest.raises(RateLimited) as exc:
        await q.admit(p, model="m", est_tokens=600, est_cost=0)
    assert "1000 tokens per minute" in exc.value.detail
    # The first call used 100 tokens, not 600: 500 come back and 600 more now fit.
    await q.settle(first, tokens_in=40, tokens_out=60, cost=0)
    await q.admit(p, model="m", est_tokens=600, est_cost=0)
    with pytest.raises(RateLimited):
        await q.admit(p, model="m", est_tokens=400, est_cost=0)


async def test_tpm_overrun_is_charged_as_debt(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(tpm=1000))
    p = principal()
    res = await q.admit(p, model="m", est_tokens=100, est_cost=0)
    await q.settle(res, tokens_in=100, tokens_out=850, cost=0)  # 950 used
    with pytest.raises(RateLimited):
        await q.admit(p, model="m", est_tokens=100, est_cost=0)
    await q.admit(p, model="m", est_tokens=50, est_cost=0)


async def test_request_larger_than_tpm_is_refused_outright(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(tpm=1000))
    with pytest.raises(RateLimited) as exc:
        await q.admit(principal(), model="m", est_tokens=1001, est_cost=0)
    assert exc.value.detail.startswith("Request too large: about 1001 tokens")
    # Nothing was consumed: the full minute's allowance is still there.
    await q.admit(principal(), model="m", est_tokens=1000, est_cost=0)


async def test_concurrency_slots_are_freed_by_settle_and_release(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(concurrency=2))
    p = principal()
    a = await q.admit(p, model="m", est_tokens=1, est_cost=0)
    b = await q.admit(p, model="m", est_tokens=1, est_cost=0)
    with pytest.raises(RateLimited) as exc:
        await q.admit(p, model="m", est_tokens=1, est_cost=0)
    assert "concurrent requests" in exc.value.detail and exc.value.retry_after == 1
    await q.settle(a, tokens_in=1, tokens_out=1, cost=0)
    c = await q.admit(p, model="m", est_tokens=1, est_cost=0)
    await q.release(b)
    await q.release(c)
    await q.admit(p, model="m", est_tokens=1, est_cost=0)
    await q.admit(p, model="m", est_tokens=1, est_cost=0)


async def test_a_refusal_reserves_nothing_in_any_subject(make_quota: MakeQuota) -> None:
    # The key allows 2 per minute; the user allows 1 at a time. A request refused for the
    # user's concurrency must not use up the key's rate.
    q = await make_quota(defaults={"key": {"rpm": 2}, "user": {"concurrency": 1}})
    p = principal()
    held = await q.admit(p, model="m", est_tokens=1, est_cost=0)
    for _ in range(3):
        with pytest.raises(RateLimited) as exc:
            await q.admit(p, model="m", est_tokens=1, est_cost=0)
        assert "user 'alice'" in exc.value.detail
    await q.release(held)
    await q.admit(p, model="m", est_tokens=1, est_cost=0)  # the key's 2nd request
    with pytest.raises(RateLimited) as exc:
        await q.admit(p, model="m", est_tokens=1, est_cost=0)
    assert "API key" in exc.value.detail


async def test_budget_reserves_then_settles_actual_cost(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(budget={"amount": 1.0, "period": "day"}))
    p = principal()
    a = await q.admit(p, model="m", est_tokens=1, est_cost=0.4)
    assert await q.budget_state(p, "key") == (0.0, 0.4)
    await q.settle(a, tokens_in=1, tokens_out=1, cost=0.25)
    assert await q.budget_state(p, "key") == (0.25, 0.0)
    b = await q.admit(p, model="m", est_tokens=1, est_cost=0.7)
    await q.settle(b, tokens_in=1, tokens_out=1, cost=0.7)  # 0.95 spent
    with pytest.raises(RateLimited) as exc:
        await q.admit(p, model="m", est_tokens=1, est_cost=0.1)
    err = exc.value
    assert err.code == "insufficient_quota"
    assert "Budget exhausted: $1.00 for" in err.detail
    _, end = period_bounds("day", datetime.now(UTC))
    to_midnight = end - datetime.now(UTC).timestamp()
    assert to_midnight - 5 <= err.retry_after <= to_midnight + 5
    # A request that still fits is admitted.
    await q.admit(p, model="m", est_tokens=1, est_cost=0.05)


async def test_budget_held_by_in_flight_requests_says_retry_shortly(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(budget={"amount": 1.0}))
    p = principal()
    held = await q.admit(p, model="m", est_tokens=1, est_cost=0.6)
    with pytest.raises(RateLimited) as exc:
        await q.admit(p, model="m", est_tokens=1, est_cost=0.6)
    assert exc.value.retry_after == 1 and "in flight" in exc.value.detail
    await q.release(held)
    assert await q.budget_state(p, "key") == (0.0, 0.0)
    await q.admit(p, model="m", est_tokens=1, est_cost=0.6)


async def test_estimate_above_the_whole_budget_is_refused(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(budget={"amount": 1.0}))
    with pytest.raises(RateLimited) as exc:
        await q.admit(principal(), model="m", est_tokens=1, est_cost=1.5)
    assert "exceeds the budget" in exc.value.detail


async def test_settle_and_release_are_idempotent(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(concurrency=1, budget={"amount": 10.0}))
    p = principal()
    res = await q.admit(p, model="m", est_tokens=10, est_cost=1.0)
    await q.settle(res, tokens_in=5, tokens_out=5, cost=0.5)
    await q.settle(res, tokens_in=5, tokens_out=5, cost=0.5)
    await q.release(res)
    assert await q.budget_state(p, "key") == (0.5, 0.0)
    other = await q.admit(p, model="m", est_tokens=10, est_cost=1.0)
    await q.release(other)
    await q.release(other)
    assert await q.budget_state(p, "key") == (0.5, 0.0)


async def test_every_subject_kind_is_limited(make_quota: MakeQuota) -> None:
    q = await make_quota(
        defaults={"team": {"rpm": 50}},
        teams={"sre": {"concurrency": 1}},
        tenants={"acme": {"rpm": 3}},
    )
    # Team: only listed groups are subjects; "dev" is not limited.
    sre = await q.admit(principal(groups=("sre", "dev")), model="m", est_tokens=1, est_cost=0)
    with pytest.raises(RateLimited) as exc:
        await q.admit(principal("carol", "k-c", ("sre",)), model="m", est_tokens=1, est_cost=0)
    assert "team 'sre'" in exc.value.detail
    await q.release(sre)
    await q.admit(principal("dave", "k-d", ("dev",)), model="m", est_tokens=1, est_cost=0)
    # Tenant: every principal of the tenant shares it.
    for i in range(3):
        await q.admit(principal(f"u{i}", None, tenant="acme"), model="m", est_tokens=1, est_cost=0)
    with pytest.raises(RateLimited) as exc:
        await q.admit(principal("u9", None, tenant="acme"), model="m", est_tokens=1, est_cost=0)
    assert "tenant 'acme'" in exc.value.detail


async def test_lease_expiry_frees_slots_and_budget_of_a_crashed_holder(
    make_quota: MakeQuota,
) -> None:
    # A replica that admitted and died never settles: its lease runs out instead.
    q = await make_quota(lease_seconds=0.3, **key_limits(concurrency=1, budget={"amount": 1.0}))
    p = principal()
    await q.admit(p, model="m", est_tokens=1, est_cost=0.8)
    with pytest.raises(RateLimited):
        await q.admit(p, model="m", est_tokens=1, est_cost=0.1)
    await asyncio.sleep(0.45)
    res = await q.admit(p, model="m", est_tokens=1, est_cost=0.8)
    assert await q.budget_state(p, "key") == (0.0, 0.8)
    await q.settle(res, tokens_in=1, tokens_out=1, cost=0.8)


async def test_unlimited_principal_touches_no_backend(make_quota: MakeQuota) -> None:
    q = await make_quota()
    res = await q.admit(principal(), model="m", est_tokens=10**9, est_cost=10**6)
    assert res.plans == ()
    await q.settle(res, tokens_in=1, tokens_out=1, cost=1)


async def test_bad_estimates_are_clamped_or_refused(make_quota: MakeQuota) -> None:
    q = await make_quota(**key_limits(tpm=100, budget={"amount": 1.0}))
    res = await q.admit(principal(), model="m", est_tokens=-5, est_cost=-1.0)
    assert res.est_tokens == 0 and res.est_cost == 0
    with pytest.raises(ValueError, match="finite"):
        await q.admit(principal(), model="m", est_tokens=1, est_cost=float("nan"))
    # A non-finite actual cost charges the estimate rather than corrupting the total.
    res = await q.admit(principal(), model="m", est_tokens=1, est_cost=0.3)
    await q.settle(res, tokens_in=1, tokens_out=1, cost=float("inf"))
    assert await q.budget_state(principal(), "key") == (0.3, 0.0)
