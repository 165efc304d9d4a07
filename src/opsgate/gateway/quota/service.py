"""`QuotaService`: admit (check + reserve), settle (actuals), release (refund).

The gateway calls `admit` before the provider call and exactly one of `settle`/`release`
after it. Both are idempotent and never raise: the response has already gone out, and a
reservation that cannot be settled expires with its lease.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter

from opsgate.db.engine import Database
from opsgate.errors import RateLimited, Unavailable
from opsgate.gateway.quota.limits import KeyLimitLookup, LimitResolver
from opsgate.gateway.quota.memory import MemoryQuotaBackend
from opsgate.gateway.quota.reservation import (
    Denial,
    PeriodClock,
    Reservation,
    SpendRow,
    SubjectPlan,
    to_units,
    to_usd,
)
from opsgate.gateway.quota.settings import QuotaSettings
from opsgate.identity.principal import Principal
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.quota")


def _backend_errors(remote: bool) -> tuple[type[Exception], ...]:
    """What a backend failure looks like; redis is imported only for the Redis backend."""
    if not remote:
        return (OSError, TimeoutError)
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


_KIND_TEXT = {"key": "API key", "user": "user", "team": "team", "tenant": "tenant"}


class QuotaBackend(Protocol):
    async def admit(self, res: Reservation) -> Denial | None: ...

    async def settle(self, res: Reservation, tokens: int, cost: int) -> None: ...

    async def release(self, res: Reservation) -> None: ...

    async def budget_state(self, tenant: str, p: SubjectPlan) -> tuple[int, int]: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class QuotaMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.rejections = Counter(
            "opsgate_quota_rejections_total",
            "Requests refused by a quota, by dimension (rpm, tpm, concurrency, budget)",
            ["dimension"],
            registry=reg,
        )
        self.backend_errors = Counter(
            "opsgate_quota_backend_errors_total",
            "Quota backend failures, by operation and what was done (refused/admitted)",
            ["operation", "action"],
            registry=reg,
        )


def _wait_text(seconds: float) -> str:
    s = max(1, int(seconds + 0.999))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{(s + 59) // 60} min"
    return f"{(s + 3599) // 3600} h"


def denial_detail(res: Reservation, d: Denial) -> str:
    """What the client reads: which limit of which subject, and when to retry."""
    p = res.plans[d.index]
    who = f"{_KIND_TEXT[p.kind]} {p.name!r}"
    wait = _wait_text(d.retry_after)
    if d.dimension == "rpm":
        return f"Rate limit reached: {p.rpm} requests per minute for {who}; retry in {wait}."
    if d.dimension == "tpm" and d.kind == "too_large":
        return (
            f"Request too large: about {res.est_tokens} tokens, more than the limit of "
            f"{p.tpm} tokens per minute for {who}."
        )
    if d.dimension == "tpm":
        return f"Rate limit reached: {p.tpm} tokens per minute for {who}; retry in {wait}."
    if d.dimension == "concurrency":
        return f"Too many concurrent requests: the limit is {p.concurrency} for {who}."
    budget = f"${to_usd(p.budget):.2f} for {p.period} for {who}"
    if d.kind == "too_large":
        return f"Request estimated at ${to_usd(res.est_cost):.4f} exceeds the budget of {budget}."
    if d.kind == "held":
        return f"Budget nearly used: requests in flight hold the rest of {budget}; retry shortly."
    return f"Budget exhausted: {budget}; it renews in {wait}."


class QuotaService:
    """Quotas for every subject of a request (API key, user, listed teams, tenant)."""

    def __init__(
        self,
        settings: QuotaSettings,
        backend: QuotaBackend,
        *,
        metrics: QuotaMetrics | None = None,
        key_limits: KeyLimitLookup | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics or QuotaMetrics()
        self.resolver = LimitResolver(settings, key_limits)
        self._now = now
        self._periods = PeriodClock(now)
        self._remote = not isinstance(backend, MemoryQuotaBackend)
        self._errors = _backend_errors(self._remote)
        self._timeout = settings.redis_timeout_seconds * 2 + 0.1
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(6).hex()
        self._last_error_log = 0.0

    @classmethod
    def from_settings(
        cls,
        settings: QuotaSettings,
        *,
        registry: CollectorRegistry | None = None,
        key_limits: KeyLimitLookup | None = None,
    ) -> QuotaService:
        backend: QuotaBackend
        if settings.backend == "redis":
            from opsgate.gateway.quota.redis_backend import RedisQuotaBackend, redis_client

            backend = RedisQuotaBackend(
                redis_client(settings.redis_url, settings.redis_timeout_seconds),
                prefix=settings.key_prefix,
                lease_seconds=settings.lease_seconds,
            )
        else:
            backend = MemoryQuotaBackend(lease_seconds=settings.lease_seconds)
        return cls(settings, backend, metrics=QuotaMetrics(registry), key_limits=key_limits)

    @classmethod
    async def start(
        cls,
        settings: QuotaSettings,
        *,
        db: Database,
        registry: CollectorRegistry | None = None,
        key_limits: KeyLimitLookup | None = None,
    ) -> QuotaService:
        """Build from settings; a memory backend starts budgets at this period's recorded
        spend, so restarting an embedded instance does not reset them."""
        svc = cls.from_settings(settings, registry=registry, key_limits=key_limits)
        if isinstance(svc.backend, MemoryQuotaBackend) and svc.has_budgets:
            from opsgate.gateway.usage.query import spend_since

            first = svc._now().strftime("%Y-%m-01")
            seeded = svc.seed_spend(await spend_since(db, first))
            log.info("quota budgets seeded from usage", subjects=seeded)
        return svc

    @property
    def has_budgets(self) -> bool:
        s = self.settings
        every = [s.defaults.key, s.defaults.user, s.defaults.team, s.defaults.tenant]
        for table in (s.keys, s.users, s.teams, s.tenants):
            every.extend(table.values())
        return any(lim.budget is not None for lim in every)

    def plans(self, principal: Principal) -> tuple[SubjectPlan, ...]:
        return tuple(SubjectPlan.build(s, self._periods) for s in self.resolver.subjects(principal))

    async def admit(
        self, principal: Principal, *, model: str, est_tokens: int, est_cost: float
    ) -> Reservation:
        """Check and reserve every limit in one atomic step, or raise RateLimited having
        reserved nothing (Unavailable when the backend is down and policy is closed)."""
        res = Reservation(
            id=f"{self._id_prefix}{next(self._ids):x}",
            tenant=principal.tenant,
            model=model,
            plans=self.plans(principal),
            est_tokens=max(0, int(est_tokens)),
            est_cost=to_units(est_cost),
        )
        if not res.plans:
            return res
        try:
            if self._remote:
                async with asyncio.timeout(self._timeout):
                    denial = await self.backend.admit(res)
            else:
                denial = await self.backend.admit(res)
        except self._errors as exc:
            return self._backend_down(res, exc)
        if denial is not None:
            self.metrics.rejections.labels(denial.dimension).inc()
            code = "insufficient_quota" if denial.dimension == "budget" else "rate_limit_exceeded"
            raise RateLimited(denial_detail(res, denial), retry_after=denial.retry_after, code=code)
        return res

    def _backend_down(self, res: Reservation, exc: BaseException) -> Reservation:
        policy = self.settings.on_backend_error
        action = "admitted" if policy == "open" else "refused"
        self.metrics.backend_errors.labels("admit", action).inc()
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.error("quota backend unreachable", error=type(exc).__name__, action=action)
        if policy == "closed":
            raise Unavailable(
                "Rate limiting is unavailable, so model requests are refused for now; "
                "retry shortly.",
                code="quota_backend_unavailable",
                headers={"Retry-After": "1"},
            ) from None
        res.degraded = True
        return res

    async def settle(
        self, reservation: Reservation, *, tokens_in: int, tokens_out: int, cost: float
    ) -> None:
        """Correct tokens and spend to actuals and free the slot; idempotent, never raises."""
        res = reservation
        if res.state != "held":
            return
        res.state = "settled"
        if res.degraded or not res.plans:
            return
        tokens = max(0, int(tokens_in)) + max(0, int(tokens_out))
        try:
            units = to_units(cost)
        except ValueError:
            log.warning("quota settle got a non-finite cost; charging the estimate")
            units = res.est_cost
        await self._finish("settle", self.backend.settle(res, tokens, units))

    async def release(self, reservation: Reservation) -> None:
        """Refund the estimates and free the slot (the call used nothing); idempotent."""
        res = reservation
        if res.state != "held":
            return
        res.state = "released"
        if res.degraded or not res.plans:
            return
        await self._finish("release", self.backend.release(res))

    async def _finish(self, op: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            if self._remote:
                # Shielded: a client disconnect must not leave the slot held until its lease ends.
                async with asyncio.timeout(self._timeout):
                    await asyncio.shield(work)
            else:
                await work
        except self._errors as exc:
            self.metrics.backend_errors.labels(op, "lease_expires").inc()
            log.warning(
                "quota finish failed; the reservation expires with its lease",
                operation=op,
                error=type(exc).__name__,
            )

    def seed_spend(self, rows: Iterable[SpendRow]) -> int:
        """Memory backend: start current budget periods at recorded spend (after a restart).

        Returns the number of subject periods seeded; a no-op on Redis, which keeps totals.
        """
        if not isinstance(self.backend, MemoryQuotaBackend):
            return 0
        totals: dict[tuple[str, SubjectPlan], int] = {}
        for row in rows:
            who = Principal(
                id=row.principal_id,
                kind="user",
                tenant=row.tenant,
                groups=row.groups,
                auth="api_key" if row.key_id else "jwt",
                credential_id=row.key_id,
            )
            for plan in self.plans(who):
                if plan.budget >= 0 and row.day.startswith(plan.period):
                    k = (row.tenant, plan)
                    totals[k] = totals.get(k, 0) + to_units(row.cost)
        for (tenant, plan), spent in totals.items():
            self.backend.seed_spend(tenant, plan, spent)
        return len(totals)

    async def budget_state(self, principal: Principal, kind: str) -> tuple[float, float] | None:
        """(spent, held) USD of the principal's `kind` subject this period, if budgeted."""
        for p in self.plans(principal):
            if p.kind == kind and p.budget >= 0:
                spent, held = await self.backend.budget_state(principal.tenant, p)
                return to_usd(spent), to_usd(held)
        return None

    async def ready(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await self.backend.ping()
        except self._errors as exc:
            if self.settings.on_backend_error == "open":
                return "ok"
            return f"backend unreachable ({type(exc).__name__})"
        return "ok"

    async def close(self) -> None:
        await self.backend.close()
