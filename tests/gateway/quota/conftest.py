"""Quota fixtures: a service factory run against the memory backend and the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.quota.settings import QuotaSettings
from opsgate.identity.principal import Principal

MakeQuota = Callable[..., Awaitable[QuotaService]]


def principal(
    who: str = "alice",
    key: str | None = "k-alice",
    groups: tuple[str, ...] = (),
    tenant: str = "default",
) -> Principal:
    return Principal(
        id=who,
        kind="user",
        tenant=tenant,
        groups=frozenset(groups),
        auth="api_key" if key else "jwt",
        credential_id=key,
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def quota_prefix() -> str:
    return f"opsgate-test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def make_quota(
    backend: str, quota_prefix: str, request: pytest.FixtureRequest
) -> AsyncIterator[MakeQuota]:
    """Build QuotaServices on `backend`; on Redis they share one key prefix (two replicas)."""
    made: list[QuotaService] = []
    url = request.getfixturevalue("redis_url") if backend == "redis" else ""

    async def _make(**cfg: Any) -> QuotaService:
        cfg.setdefault("backend", backend)
        if backend == "redis":
            cfg.setdefault("redis_url", url)
            cfg.setdefault("key_prefix", quota_prefix)
        svc = QuotaService.from_settings(QuotaSettings.model_validate(cfg))
        made.append(svc)
        return svc

    yield _make
    for svc in made:
        await svc.close()
    if backend == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url)
        keys = [k async for k in client.scan_iter(match=f"{quota_prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
