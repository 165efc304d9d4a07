"""Calling a route plan: retries with jittered backoff, Retry-After, fallback, breakers.

Fallback happens on connect errors, timeouts, 429, 5xx and on a deployment that rejects
our credentials (401/403/404). An upstream 400/413/422 is the client's problem: it is
returned at once (another deployment would refuse it too).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from opsgate.errors import BadRequest, OpsGateError, RateLimited, UpstreamError
from opsgate.gateway.credentials import CredentialCache
from opsgate.gateway.health import HealthBoard
from opsgate.gateway.providers.base import (
    Credentials,
    Provider,
    UpstreamStatusError,
    UpstreamTimeout,
)
from opsgate.gateway.router import RoutePlan
from opsgate.gateway.settings import DeploymentSettings, GatewaySettings

T = TypeVar("T")
Attempt = Callable[[Provider, DeploymentSettings, Credentials, float], Awaitable[T]]

CLIENT_ERRORS = frozenset({400, 413, 422})
RETRY_SAME = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(slots=True)
class RouteTrace:
    """What routing did; goes into the `x-opsgate-route` header and the audit event."""

    model: str
    deployment: str | None = None
    attempts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def failed(self, dep: str, outcome: str) -> None:
        self.attempts.append(f"{dep}:{outcome}")

    def header(self) -> str:
        out = f"{self.model}->{self.deployment or 'none'}"
        if self.attempts:
            out += ";fallback-from=" + ",".join(self.attempts)
        return out

    def as_audit(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "deployment": self.deployment,
            "failed_attempts": self.attempts,
            "skipped": self.skipped,
        }


def _outcome(err: UpstreamError) -> str:
    if isinstance(err, UpstreamStatusError):
        return str(err.upstream_status)
    if isinstance(err, UpstreamTimeout):
        return "timeout"
    return err.code.removeprefix("upstream_")


def _client_error(err: UpstreamStatusError) -> BadRequest:
    msg = ""
    try:
        body = orjson.loads(err.upstream_body or "")
        inner = body.get("error") if isinstance(body, dict) else None
        if isinstance(inner, dict):
            msg = str(inner.get("message") or "")
        elif isinstance(inner, str):
            msg = inner
    except orjson.JSONDecodeError:
        pass
    detail = (
        f"the upstream model rejected the request: {msg[:500]}"
        if msg
        else ("the upstream model rejected the request")
    )
    return BadRequest(detail, code="upstream_rejected_request")


class _Failed(Exception):
    def __init__(self, err: UpstreamError) -> None:
        self.err = err


class Executor:
    """Runs one attempt function over a plan's candidates until one succeeds."""

    def __init__(
        self,
        settings: GatewaySettings,
        providers: dict[str, Provider],
        health: HealthBoard,
        credentials: CredentialCache,
        on_fallback: Callable[[str, str, str], None],
        rng: random.Random | None = None,
    ) -> None:
        self.s = settings
        self.providers = providers
        self.health = health
        self.credentials = credentials
        self.on_fallback = on_fallback
        self.rng = rng or random.Random()

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        r = self.s.retry
        jitter = self.rng.uniform(
            0, min(r.backoff_max_seconds, r.backoff_base_seconds * 2**attempt)
        )
        return max(jitter, retry_after or 0.0)

    async def run(
        self, plan: RoutePlan, trace: RouteTrace, deadline: float, attempt_fn: Attempt[T]
    ) -> T:
        """The first successful result; the deployment's bulkhead slot stays held on success
        (the caller releases it with `self.health.get(name).release()` when done)."""
        trace.skipped = plan.skipped
        last: OpsGateError | None = None
        retry_afters: list[float] = []
        all_429 = True
        for dep in plan.candidates:
            try:
                result = await self._try_deployment(dep, trace, deadline, attempt_fn)
            except _Failed as failed:
                err = failed.err
            else:
                trace.deployment = dep.name
                return result
            last = err
            if isinstance(err, UpstreamStatusError) and err.upstream_status == 429:
                if err.retry_after is not None:
                    retry_afters.append(err.retry_after)
            else:
                all_429 = False
            if time.monotonic() >= deadline:
                break
        if last is None:
            raise UpstreamError("no deployment could be tried", code="no_healthy_deployment")
        if all_429:
            raise RateLimited(
                "every deployment of this model is rate limited upstream",
                retry_after=min(retry_afters) if retry_afters else 1.0,
                code="upstream_rate_limited",
            )
        if isinstance(last, UpstreamTimeout):
            raise UpstreamTimeout("every deployment timed out or failed")
        raise UpstreamError("every deployment of this model failed", code="upstream_failed")

    async def _try_deployment(
        self, dep: DeploymentSettings, trace: RouteTrace, deadline: float, fn: Attempt[T]
    ) -> T:
        h = self.health.get(dep.name)
        provider = self.providers[dep.provider]
        err: UpstreamError | None = None
        for attempt in range(self.s.retry.attempts_per_deployment):
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                trace.failed(dep.name, "deadline")
                raise _Failed(err or UpstreamTimeout("request deadline reached"))
            if not h.acquire(now):
                trace.failed(dep.name, "breaker-open" if h.state != "closed" else "saturated")
                raise _Failed(err or UpstreamError("deployment unavailable"))
            held = False
            try:
                creds = await self.credentials.get(dep)
                timeout = min(dep.timeout_seconds or self.s.attempt_timeout_seconds, remaining)
                t0 = time.perf_counter()
                result = await fn(provider, dep, creds, timeout)
                h.success(time.perf_counter() - t0)
                held = True
                return result
            except UpstreamStatusError as exc:
                if exc.upstream_status in CLIENT_ERRORS:
                    h.neutral()
                    raise _client_error(exc) from None
                h.failure(time.monotonic())
                err = exc
            except UpstreamError as exc:
                h.failure(time.monotonic())
                err = exc
            except BaseException:
                h.neutral()
                raise
            finally:
                if not held:
                    h.release()
            assert err is not None
            trace.failed(dep.name, _outcome(err))
            self.on_fallback(trace.model, dep.name, _outcome(err))
            if not self._retry_same(err, attempt, deadline):
                raise _Failed(err)
            await asyncio.sleep(self._backoff(attempt, getattr(err, "retry_after", None)))
        raise _Failed(err or UpstreamError("no attempt was made"))

    def _retry_same(self, err: UpstreamError, attempt: int, deadline: float) -> bool:
        if attempt + 1 >= self.s.retry.attempts_per_deployment:
            return False
        if isinstance(err, UpstreamTimeout):
            return False  # a slow deployment stays slow; spend the budget elsewhere
        if isinstance(err, UpstreamStatusError):
            if err.upstream_status not in RETRY_SAME:
                return False
            ra = err.retry_after
            if ra is not None and (ra > self.s.retry.retry_after_cap_seconds):
                return False
            if ra is not None and time.monotonic() + ra >= deadline:
                return False
        return True
