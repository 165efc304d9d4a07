"""Through the real gateway over HTTP with the OpenAI SDK: budgets reserve across
concurrent requests, usage settles them, kill switches flipped on the API refuse at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from opsgate.gateway.usage.models import UsageRow
from tests.fakes.provider import FakeProvider
from tests.gateway.conftest import MakeGateway, dep
from tests.gateway.quota.conftest import principal

MSGS: Any = [{"role": "user", "content": "x"}]
# One request: ~1 input token + max_tokens 1000 at $1/$2 per million = $0.002001 estimated;
# the fake answers with 1 + 2 tokens, i.e. $0.000005 actual.
EST = (1 * 1.0 + 1000 * 2.0) / 1e6


async def test_concurrent_requests_reserve_the_budget(
    make_gateway: MakeGateway, fake: FakeProvider
) -> None:
    url = fake.url  # type: ignore[attr-defined]
    gw = await make_gateway(
        models={"slow": {"deployments": [dep("slow-dep", url, "delay-300")]}},
        quota={"defaults": {"key": {"budget": {"amount": 0.005, "period": "day"}}}},
    )
    client = gw.openai()

    async def call() -> Any:
        try:
            return await client.chat.completions.create(
                model="slow", messages=MSGS, max_tokens=1000
            )
        except openai.RateLimitError as exc:
            return exc

    results = await asyncio.gather(*(call() for _ in range(5)))
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 3 and len(fake.requests) == 2  # only what the budget can hold
    for err in refused:
        assert err.code == "insufficient_quota"
        assert err.response.headers["retry-after"] == "1"  # held by requests in flight
        assert "in flight" in err.message

    rt = gw.runtime
    await rt.usage.flush()
    async with rt.db.session("default") as s:
        every = list((await s.execute(select(UsageRow).where(UsageRow.model == "slow"))).scalars())
    rows = [r for r in every if r.status == "success"]
    assert len(rows) == 2
    # Refusals are in the ledger too, at no cost.
    assert (
        sorted((r.status, r.cost) for r in every if r not in rows)
        == [("insufficient_quota", 0.0)] * 3
    )
    # Settled with the real cost, which the usage ledger shows too.
    key_id = rows[0].key_id
    spent, held = await rt.quota.budget_state(principal(rows[0].principal_id, key_id), "key")
    assert held == 0
    assert spent == pytest.approx(sum(r.cost for r in rows)) and spent < 2 * EST
    # With the reservations settled, the next request fits again.
    await client.chat.completions.create(model="slow", messages=MSGS, max_tokens=1000)


async def test_key_kill_switch_via_api_refuses_that_key_only(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    user = gw.openai()
    await user.chat.completions.create(model="ops-default", messages=MSGS)
    async with httpx.AsyncClient(base_url=gw.url) as api:
        who = (await api.get("/api/v1/whoami", headers=gw.headers())).json()
        key_id = who["id"].removeprefix("key:")
        admin = gw.headers(roles="admin")
        r = await api.post(
            "/api/v1/killswitches",
            headers=admin,
            json={"scope": "api_key", "target": key_id, "reason": "key leaked in CI logs"},
        )
        assert r.status_code == 201, r.text
        with pytest.raises(openai.PermissionDeniedError) as exc:
            await user.chat.completions.create(model="ops-default", messages=MSGS)
        assert exc.value.code == "key_killed" and "key leaked in CI logs" in exc.value.message
        # The admin's own key is not affected.
        await gw.openai(roles="admin").chat.completions.create(model="ops-default", messages=MSGS)

        r = await api.post(
            "/api/v1/killswitches", headers=admin, json={"scope": "platform", "reason": "drill"}
        )
        assert r.status_code == 201
        with pytest.raises(openai.InternalServerError) as down:
            await gw.openai(roles="admin").chat.completions.create(
                model="ops-default", messages=MSGS
            )
        assert down.value.status_code == 503 and "drill" in down.value.message

        for path in ("platform/*", f"api_key/{key_id}"):
            r = await api.delete(
                f"/api/v1/killswitches/{path}", params={"reason": "resolved"}, headers=admin
            )
            assert r.status_code == 200, r.text
    await user.chat.completions.create(model="ops-default", messages=MSGS)


@pytest.mark.redis
async def test_two_app_instances_share_limits_in_redis(
    make_gateway: MakeGateway, redis_url: str, quota_prefix: str
) -> None:
    quota = {
        "backend": "redis",
        "redis_url": redis_url,
        "key_prefix": quota_prefix,
        "defaults": {"key": {"rpm": 3}},
    }
    a = await make_gateway(quota=quota)
    b = await make_gateway(quota=quota)  # same database, same Redis: a second replica
    key = a.token()
    clients = [
        openai.AsyncOpenAI(api_key=key, base_url=f"{g.url}/v1", max_retries=0, timeout=20)
        for g in (a, b)
    ]
    for i in range(3):
        await clients[i % 2].chat.completions.create(model="ops-default", messages=MSGS)
    for client in clients:
        with pytest.raises(openai.RateLimitError) as exc:
            await client.chat.completions.create(model="ops-default", messages=MSGS)
        assert exc.value.code == "rate_limit_exceeded"
        assert 1 <= int(exc.value.response.headers["retry-after"]) <= 20
