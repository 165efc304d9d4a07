"""Quota counters in Redis (production): one Lua script per admit and per settle/release.

Keys carry the tenant as a hash tag (`{tenant}`), so every key one request touches lives
in one slot and the scripts also run on Redis Cluster. Scripts are sent by SHA
(EVALSHA) and reloaded when the server has lost them (restart, SCRIPT FLUSH).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from opsgate.gateway.quota.lua import ADMIT, FINISH
from opsgate.gateway.quota.reservation import (
    Denial,
    DenialKind,
    Dimension,
    Reservation,
    SubjectPlan,
)

_DIMENSIONS: dict[str, Dimension] = {
    "rpm": "rpm",
    "tpm": "tpm",
    "concurrency": "concurrency",
    "budget": "budget",
}
_KINDS: dict[str, DenialKind] = {"limit": "limit", "too_large": "too_large", "held": "held"}


def _seg(text: str) -> str:
    # Names are user-controlled (user ids, group names): escape the key separators and
    # hash-tag braces so two different subjects can never share a key.
    return text.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def redis_client(url: str, timeout: float) -> Redis:
    """A client whose calls fail fast: one immediate retry, then the error."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class RedisQuotaBackend:
    def __init__(self, client: Redis, *, prefix: str, lease_seconds: float) -> None:
        self.client = client
        self.prefix = prefix
        self._lease_us = int(lease_seconds * 1_000_000)
        self._admit = client.register_script(ADMIT)
        self._finish = client.register_script(FINISH)

    def _base(self, tenant: str, p: SubjectPlan) -> str:
        return f"{self.prefix}:{{{_seg(tenant)}}}:{p.kind}:{_seg(p.name)}"

    def keys(self, tenant: str, p: SubjectPlan) -> tuple[str, str, str, str, str]:
        """rate, tokens, slots, budget totals, budget leases."""
        b = self._base(tenant, p)
        return f"{b}:rpm", f"{b}:tpm", f"{b}:cc", f"{b}:b:{p.period}", f"{b}:bl:{p.period}"

    async def admit(self, res: Reservation) -> Denial | None:
        keys: list[str] = []
        args: list[Any] = [res.id, self._lease_us, len(res.plans), res.est_tokens, res.est_cost]
        for p in res.plans:
            keys.extend(self.keys(res.tenant, p))
            args.extend((p.rpm, p.tpm, p.concurrency, p.budget, int(p.period_end)))
        out = await self._admit(keys=keys, args=args)
        if int(out[0]) == 1:
            return None
        return Denial(
            index=int(out[1]) - 1,
            dimension=_DIMENSIONS[_text(out[2])],
            kind=_KINDS[_text(out[3])],
            retry_after=int(_text(out[4])) / 1_000_000,
        )

    async def settle(self, res: Reservation, tokens: int, cost: int) -> None:
        await self._run_finish(res, tokens - res.est_tokens, cost)

    async def release(self, res: Reservation) -> None:
        await self._run_finish(res, -res.est_tokens, -1)

    async def _run_finish(self, res: Reservation, delta: int, spend: int) -> None:
        keys: list[str] = []
        args: list[Any] = [res.id, len(res.plans), delta, spend, res.est_cost, self._lease_us]
        for p in res.plans:
            _, tpm, cc, bt, bl = self.keys(res.tenant, p)
            keys.extend((tpm, cc, bt, bl))
            args.extend((p.tpm, 1 if p.budget >= 0 else 0, int(p.period_end)))
        await self._finish(keys=keys, args=args)

    async def budget_state(self, tenant: str, p: SubjectPlan) -> tuple[int, int]:
        """(spent, held) cost units of a subject's current budget period."""
        totals = self.keys(tenant, p)[3]
        spent, held = await self.client.hmget(totals, ["s", "r"])
        return int(spent or 0), int(held or 0)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
