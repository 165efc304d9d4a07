"""In-process quota counters (embedded mode): exact and atomic within one event loop.

`admit` checks every subject and dimension, then reserves, with no await in between, so
no other request can interleave. Rates use GCRA (a token bucket kept as one "theoretical
arrival time" per subject): capacity one minute's allowance, refilled continuously, and
the Retry-After is the exact wait until the request would fit. Idle entries are swept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opsgate.gateway.quota.reservation import (
    WINDOW_SECONDS,
    Denial,
    Reservation,
    SubjectPlan,
)

# Float slack when comparing arrival times, so rounding never refuses the last allowed unit.
EPSILON = 1e-6


def gcra(tat: float, now: float, amount: float, limit: int) -> tuple[float, float]:
    """The new arrival time after `amount` units, and how long past the window it lands
    (> 0 means refuse; the value is the wait until it would fit)."""
    new = max(tat, now) + amount * WINDOW_SECONDS / limit
    return new, new - now - WINDOW_SECONDS


@dataclass(slots=True)
class _Budget:
    end: float  # wall-clock unix seconds
    spent: int = 0
    held: int = 0
    # reservation id -> (cost units, lease expiry on the monotonic clock)
    leases: dict[str, tuple[int, float]] = field(default_factory=dict)

    def purge(self, now: float) -> None:
        for rid in [r for r, (_, exp) in self.leases.items() if exp <= now]:
            self.held -= self.leases.pop(rid)[0]


@dataclass(slots=True)
class _Entry:
    rpm_tat: float = 0.0
    tpm_tat: float = 0.0
    # reservation id -> lease expiry (monotonic)
    slots: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, _Budget] = field(default_factory=dict)

    def purge_slots(self, now: float) -> None:
        for rid in [r for r, exp in self.slots.items() if exp <= now]:
            del self.slots[rid]

    def idle(self, now: float, wall: float) -> bool:
        self.purge_slots(now)
        for period in [p for p, b in self.budgets.items() if b.end <= wall]:
            b = self.budgets[period]
            b.purge(now)
            if not b.leases:
                del self.budgets[period]
        return self.rpm_tat <= now and self.tpm_tat <= now and not self.slots and not self.budgets


EntryKey = tuple[str, str, str]


class MemoryQuotaBackend:
    def __init__(
        self,
        *,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sweep_seconds: float = 30.0,
    ) -> None:
        self._lease = lease_seconds
        self._clock = clock
        self._wall = wall
        self._sweep_seconds = sweep_seconds
        self._next_sweep = clock() + sweep_seconds
        self._entries: dict[EntryKey, _Entry] = {}

    @property
    def size(self) -> int:
        return len(self._entries)

    async def admit(self, res: Reservation) -> Denial | None:
        return self.admit_now(res)

    def admit_now(self, res: Reservation) -> Denial | None:
        """Check then reserve, synchronously (the atomic step)."""
        now, wall = self._clock(), self._wall()
        if now >= self._next_sweep:
            self.sweep()
        entries = [self._entries.get((res.tenant, p.kind, p.name)) for p in res.plans]
        worst: Denial | None = None
        for i, (plan, entry) in enumerate(zip(res.plans, entries, strict=True)):
            for denial in self._check(i, plan, entry or _Entry(), res, now, wall):
                if worst is None or denial.retry_after > worst.retry_after:
                    worst = denial
        if worst is not None:
            return worst
        for plan, entry in zip(res.plans, entries, strict=True):
            if entry is None:
                entry = self._entries[(res.tenant, plan.kind, plan.name)] = _Entry()
            self._reserve(plan, entry, res, now)
        return None

    def _check(
        self, i: int, p: SubjectPlan, e: _Entry, res: Reservation, now: float, wall: float
    ) -> list[Denial]:
        out: list[Denial] = []
        if p.rpm:
            _, over = gcra(e.rpm_tat, now, 1, p.rpm)
            if over > EPSILON:
                out.append(Denial(i, "rpm", "limit", over))
        if p.tpm and res.est_tokens:
            if res.est_tokens > p.tpm:
                out.append(Denial(i, "tpm", "too_large", WINDOW_SECONDS))
            else:
                _, over = gcra(e.tpm_tat, now, res.est_tokens, p.tpm)
                if over > EPSILON:
                    out.append(Denial(i, "tpm", "limit", over))
        if p.concurrency:
            e.purge_slots(now)
            if len(e.slots) >= p.concurrency:
                out.append(Denial(i, "concurrency", "limit", 1.0))
        if p.budget >= 0:
            b = e.budgets.get(p.period)
            spent, held = 0, 0
            if b is not None:
                b.purge(now)
                spent, held = b.spent, b.held
            if spent + held + res.est_cost > p.budget:
                until_end = max(1.0, p.period_end - wall)
                if res.est_cost > p.budget:
                    out.append(Denial(i, "budget", "too_large", until_end))
                elif spent + res.est_cost > p.budget:
                    out.append(Denial(i, "budget", "limit", until_end))
                else:
                    out.append(Denial(i, "budget", "held", 1.0))
        return out

    def _reserve(self, p: SubjectPlan, e: _Entry, res: Reservation, now: float) -> None:
        if p.rpm:
            e.rpm_tat = gcra(e.rpm_tat, now, 1, p.rpm)[0]
        if p.tpm and res.est_tokens:
            e.tpm_tat = gcra(e.tpm_tat, now, res.est_tokens, p.tpm)[0]
        if p.concurrency:
            e.slots[res.id] = now + self._lease
        if p.budget >= 0:
            b = e.budgets.get(p.period)
            if b is None:
                b = e.budgets[p.period] = _Budget(end=p.period_end)
            b.held += res.est_cost
            b.leases[res.id] = (res.est_cost, now + self._lease)

    async def settle(self, res: Reservation, tokens: int, cost: int) -> None:
        self._finish(res, tokens - res.est_tokens, cost)

    async def release(self, res: Reservation) -> None:
        self._finish(res, -res.est_tokens, None)

    def _finish(self, res: Reservation, token_delta: int, cost: int | None) -> None:
        now = self._clock()
        for p in res.plans:
            key = (res.tenant, p.kind, p.name)
            e = self._entries.get(key)
            if e is None:
                if cost is None or p.budget < 0:
                    continue
                e = self._entries[key] = _Entry()
            if p.tpm and token_delta:
                # More tokens than estimated is charged as debt from now; fewer is refunded.
                base = max(e.tpm_tat, now) if token_delta > 0 else e.tpm_tat
                e.tpm_tat = base + token_delta * WINDOW_SECONDS / p.tpm
            e.slots.pop(res.id, None)
            if p.budget >= 0:
                b = e.budgets.get(p.period)
                if b is None:
                    b = e.budgets[p.period] = _Budget(end=p.period_end)
                lease = b.leases.pop(res.id, None)
                if lease is not None:
                    b.held -= lease[0]
                if cost is not None:
                    b.spent += cost

    def seed_spend(self, tenant: str, plan: SubjectPlan, spent: int) -> None:
        """Start a budget period at `spent` (e.g. from recorded usage after a restart)."""
        if plan.budget < 0:
            return
        e = self._entries.setdefault((tenant, plan.kind, plan.name), _Entry())
        b = e.budgets.setdefault(plan.period, _Budget(end=plan.period_end))
        b.spent = max(b.spent, spent)

    def sweep(self) -> None:
        """Drop entries that hold no state that matters any more."""
        now, wall = self._clock(), self._wall()
        self._next_sweep = now + self._sweep_seconds
        for key in [k for k, e in self._entries.items() if e.idle(now, wall)]:
            del self._entries[key]

    async def budget_state(self, tenant: str, plan: SubjectPlan) -> tuple[int, int]:
        """(spent, held) cost units of a subject's current budget period."""
        e = self._entries.get((tenant, plan.kind, plan.name))
        b = e.budgets.get(plan.period) if e is not None else None
        return (b.spent, b.held) if b is not None else (0, 0)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
