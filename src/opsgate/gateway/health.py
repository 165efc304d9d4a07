"""Per-deployment health: EWMA latency, a circuit breaker and an in-flight bulkhead."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opsgate.gateway.settings import GatewaySettings

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


@dataclass(slots=True)
class DeploymentHealth:
    name: str
    threshold: int
    cooldown: float
    alpha: float
    max_inflight: int
    on_state: Callable[[str, str], None]
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_inflight: bool = False
    ewma_s: float | None = None
    inflight: int = 0

    def available(self, now: float) -> bool:
        """Could a call go here now? (no side effects; routing uses this)"""
        if self.inflight >= self.max_inflight:
            return False
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return now - self.opened_at >= self.cooldown
        return not self.trial_inflight

    def acquire(self, now: float) -> bool:
        """Take a slot for one call; an open breaker past its cool-down admits one trial."""
        if not self.available(now):
            return False
        if self.state == OPEN:
            self._set(HALF_OPEN)
        if self.state == HALF_OPEN:
            self.trial_inflight = True
        self.inflight += 1
        return True

    def release(self) -> None:
        self.inflight = max(0, self.inflight - 1)

    def success(self, latency_s: float) -> None:
        self.ewma_s = (
            latency_s
            if self.ewma_s is None
            else self.alpha * latency_s + (1 - self.alpha) * self.ewma_s
        )
        self.failures = 0
        self.trial_inflight = False
        if self.state != CLOSED:
            self._set(CLOSED)

    def failure(self, now: float) -> None:
        self.failures += 1
        self.trial_inflight = False
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.threshold):
            self.opened_at = now
            self._set(OPEN)

    def neutral(self) -> None:
        """The call ended without saying anything about the upstream (client error, cancel)."""
        self.trial_inflight = False

    def _set(self, state: str) -> None:
        self.state = state
        self.on_state(self.name, state)


class HealthBoard:
    """Health of every deployment by name (a deployment shared by models shares its health)."""

    def __init__(
        self,
        settings: GatewaySettings,
        on_state: Callable[[str, str], None] = lambda _n, _s: None,
    ) -> None:
        self._s = settings
        self._on_state = on_state
        self._by_name: dict[str, DeploymentHealth] = {}
        for model in settings.models.values():
            for dep in model.deployments:
                if dep.name not in self._by_name:
                    self._by_name[dep.name] = DeploymentHealth(
                        dep.name,
                        settings.breaker.failure_threshold,
                        settings.breaker.cooldown_seconds,
                        settings.ewma_alpha,
                        dep.max_concurrency,
                        on_state,
                    )

    def get(self, name: str) -> DeploymentHealth:
        return self._by_name[name]

    def snapshot(self) -> dict[str, dict[str, object]]:
        now = time.monotonic()
        return {
            n: {
                "state": h.state,
                "failures": h.failures,
                "ewma_ms": None if h.ewma_s is None else round(h.ewma_s * 1000, 3),
                "inflight": h.inflight,
                "available": h.available(now),
            }
            for n, h in self._by_name.items()
        }
