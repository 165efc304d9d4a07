"""Route choice, circuit breakers and EWMA health (no network)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from opsgate.errors import BadRequest, Forbidden, Unavailable
from opsgate.gateway.health import CLOSED, HALF_OPEN, OPEN, HealthBoard
from opsgate.gateway.router import Needs, plan_route
from opsgate.gateway.settings import GatewaySettings

URL = "http://127.0.0.1:9/v1"


def _settings(strategy: str = "ordered", **model: Any) -> GatewaySettings:
    deps = model.pop("deployments", None) or [
        {
            "name": "ext-a",
            "provider": "openai",
            "base_url": URL,
            "model": "a",
            "price_in_per_1m": 10,
            "price_out_per_1m": 30,
            "weight": 1,
        },
        {
            "name": "local",
            "provider": "openai",
            "base_url": URL,
            "model": "b",
            "location": "in_tenant",
            "price_in_per_1m": 0.1,
            "price_out_per_1m": 0.1,
            "context_window": 1000,
            "capabilities": ["chat", "stream"],
            "weight": 3,
        },
    ]
    return GatewaySettings(
        models={"m": {"deployments": deps, "strategy": strategy, **model}},
        breaker={"failure_threshold": 2, "cooldown_seconds": 0.05},
    )


def _plan(s: GatewaySettings, needs: Needs | None = None, **kw: Any) -> list[str]:
    kw.setdefault("in_tenant_only", False)
    kw.setdefault("max_cost", None)
    plan = plan_route(
        "m",
        s.models["m"],
        needs or Needs(frozenset({"chat"}), 10, 10),
        health=kw.pop("health", HealthBoard(s)),
        killed=kw.pop("killed", lambda _n: False),
        rng=random.Random(1),
        **kw,
    )
    return [d.name for d in plan.candidates]


def test_ordered_default() -> None:
    assert _plan(_settings()) == ["ext-a", "local"]


def test_restricted_only_in_tenant() -> None:
    assert _plan(_settings(), in_tenant_only=True) == ["local"]


def test_restricted_refused_when_no_in_tenant_deployment() -> None:
    s = _settings(deployments=[{"name": "x", "provider": "openai", "base_url": URL, "model": "a"}])
    with pytest.raises(Forbidden) as info:
        _plan(s, in_tenant_only=True)
    assert info.value.code == "route_refused"
    assert "restricted" in info.value.detail and "not sent" in info.value.detail


def test_restricted_unhealthy_in_tenant_is_503_with_reason() -> None:
    s = _settings()
    with pytest.raises(Unavailable) as info:
        _plan(s, in_tenant_only=True, killed=lambda n: n == "local")
    assert "in-tenant" in info.value.detail and "local:killed" in info.value.detail


def test_capability_filter() -> None:
    assert _plan(_settings(), Needs(frozenset({"chat", "tools"}), 10, 10)) == ["ext-a"]
    with pytest.raises(BadRequest) as info:
        _plan(_settings(), Needs(frozenset({"chat", "vision"}), 10, 10))
    assert "vision" in info.value.detail


def test_context_window_filter() -> None:
    assert _plan(_settings(), Needs(frozenset({"chat"}), 5000, 10)) == ["ext-a"]
    with pytest.raises(BadRequest) as info:
        _plan(_settings(), Needs(frozenset({"chat"}), 10**7, 10))
    assert info.value.code == "context_length_exceeded"


def test_cost_ceiling() -> None:
    needs = Needs(frozenset({"chat"}), 1000, 1000)  # ext-a: $0.04, local: $0.0002
    assert _plan(_settings(), needs, max_cost=0.01) == ["local"]
    with pytest.raises(Forbidden) as info:
        _plan(_settings(), needs, max_cost=0.00001)
    assert info.value.code == "cost_ceiling"


def test_lowest_cost_and_latency_strategies() -> None:
    assert _plan(_settings("lowest_cost")) == ["local", "ext-a"]
    s = _settings("lowest_latency")
    board = HealthBoard(s)
    board.get("ext-a").success(0.010)
    board.get("local").success(0.200)
    assert _plan(s, health=board) == ["ext-a", "local"]


def test_weighted_spreads_by_weight() -> None:
    s = _settings("weighted")
    firsts = [
        plan_route(
            "m",
            s.models["m"],
            Needs(frozenset({"chat"}), 1, 1),
            in_tenant_only=False,
            max_cost=None,
            health=HealthBoard(s),
            killed=lambda _n: False,
            rng=random.Random(i),
        )
        .candidates[0]
        .name
        for i in range(400)
    ]
    share = firsts.count("local") / len(firsts)
    assert 0.65 < share < 0.85  # weight 3 of 4
    assert set(firsts) == {"ext-a", "local"}


def test_breaker_opens_then_half_opens_then_closes() -> None:
    states: list[tuple[str, str]] = []
    s = _settings()
    board = HealthBoard(s, lambda n, st: states.append((n, st)))
    h = board.get("ext-a")
    now = time.monotonic()
    assert h.acquire(now)
    h.release()
    h.failure(now)
    assert h.state == CLOSED
    h.failure(now)
    assert h.state == OPEN
    assert not h.available(now + 0.01)
    assert _plan(s, health=board) == ["local"]  # skipped while open
    assert h.acquire(now + 0.1)  # after the cool-down: one trial
    assert h.state == HALF_OPEN and not h.acquire(now + 0.1)
    h.release()
    h.success(0.02)
    assert h.state == CLOSED
    assert states == [("ext-a", OPEN), ("ext-a", HALF_OPEN), ("ext-a", CLOSED)]


def test_failed_trial_reopens() -> None:
    s = _settings()
    h = HealthBoard(s).get("ext-a")
    h.failure(0.0)
    h.failure(0.0)
    assert h.acquire(1.0) and h.state == HALF_OPEN
    h.failure(1.0)
    assert h.state == OPEN and h.opened_at == 1.0


def test_bulkhead_limits_inflight() -> None:
    s = _settings(
        deployments=[
            {"name": "x", "provider": "openai", "base_url": URL, "model": "a", "max_concurrency": 2}
        ]
    )
    h = HealthBoard(s).get("x")
    assert h.acquire(0) and h.acquire(0) and not h.acquire(0)
    h.release()
    assert h.acquire(0)


def test_ewma() -> None:
    s = _settings()
    h = HealthBoard(s).get("ext-a")
    h.success(1.0)
    h.success(0.0)
    assert h.ewma_s == pytest.approx(0.8)  # alpha 0.2


def test_backoff_is_jittered_and_honours_retry_after() -> None:
    from opsgate.gateway.fallback import Executor

    s = GatewaySettings(retry={"backoff_base_seconds": 0.1, "backoff_max_seconds": 0.4})
    ex = Executor(s, {}, HealthBoard(s), None, lambda *_a: None, random.Random(3))  # type: ignore[arg-type]
    waits = [ex._backoff(5, None) for _ in range(200)]
    assert all(0 <= w <= 0.4 for w in waits) and len(set(waits)) > 100  # full jitter, capped
    assert all(ex._backoff(0, 2.5) == 2.5 for _ in range(20))  # never sooner than Retry-After
