"""Per-target circuit breakers and retry with backoff for connector calls.

Written here rather than taken from a library: the breaker must key on (connector, target),
report its state to the audit trail and status API, and never retry a non-idempotent write;
the usual async breaker libraries (aiobreaker, purgatory) are either unmaintained or bring
their own storage. The logic is small: closed -> open after N consecutive failures -> one
half-open probe after the cool-down -> closed on success, open again on failure.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

T = TypeVar("T")

State = Literal["closed", "open", "half_open"]


class BreakerOpen(Exception):
    def __init__(self, key: str, retry_in: float) -> None:
        super().__init__(f"circuit open for {key}; retry in {retry_in:.0f} s")
        self.key, self.retry_in = key, retry_in


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False


class Breakers:
    def __init__(self, failures: int, open_seconds: float) -> None:
        self.threshold, self.open_seconds = failures, open_seconds
        self._b: dict[str, _Breaker] = {}

    def state(self, key: str) -> State:
        b = self._b.get(key)
        if b is None or b.failures < self.threshold:
            return "closed"
        if time.monotonic() - b.opened_at >= self.open_seconds:
            return "half_open"
        return "open"

    def before(self, key: str) -> None:
        """Raise BreakerOpen unless a call to `key` may go ahead (one probe when half-open)."""
        b = self._b.setdefault(key, _Breaker())
        state = self.state(key)
        if state == "open":
            raise BreakerOpen(key, self.open_seconds - (time.monotonic() - b.opened_at))
        if state == "half_open":
            if b.probing:
                raise BreakerOpen(key, 1.0)
            b.probing = True

    def success(self, key: str) -> None:
        self._b[key] = _Breaker()

    def failure(self, key: str) -> None:
        b = self._b.setdefault(key, _Breaker())
        b.failures += 1
        b.probing = False
        if b.failures >= self.threshold:
            b.opened_at = time.monotonic()

    def snapshot(self) -> dict[str, State]:
        return {k: self.state(k) for k in self._b}


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    backoff: float,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """Run `fn`, retrying `retry_on` failures with jittered exponential backoff."""
    for attempt in range(attempts):
        try:
            return await fn()
        except retry_on:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(backoff * (2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
