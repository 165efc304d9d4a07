"""What a quota check plans and holds: per-subject plans, reservations, denials.

Money is counted in integer cost units of 1e-8 USD, so sums are exact in both backends
(Redis scripts run on doubles, exact for integers up to 2**53, i.e. 90 million USD).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from opsgate.gateway.quota.settings import Limits, Period, SubjectKind

UNITS_PER_USD = 100_000_000
# Rates are per minute.
WINDOW_SECONDS = 60.0

Dimension = Literal["rpm", "tpm", "concurrency", "budget"]
# Why a dimension refused: over its rate or cap, a request that can never fit, or (budgets)
# a budget whose remainder is held by requests still in flight.
DenialKind = Literal["limit", "too_large", "held"]


def to_units(usd: float) -> int:
    """USD -> cost units; refuses NaN and infinities, clamps negatives to zero."""
    if not math.isfinite(usd):
        raise ValueError("cost must be a finite number")
    return max(0, round(usd * UNITS_PER_USD))


def to_usd(units: int) -> float:
    return units / UNITS_PER_USD


def period_bounds(period: Period, now: datetime) -> tuple[str, float]:
    """The UTC calendar period containing `now`: its id and its end (unix seconds)."""
    now = now.astimezone(UTC)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), start.timestamp() + 86_400
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m"), nxt.timestamp()


class PeriodClock:
    """The current period of each kind, recomputed only when one ends (hot-path cheap)."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        # period -> (id, start, end) in unix seconds
        self._cache: dict[Period, tuple[str, float, float]] = {}

    def current(self, period: Period) -> tuple[str, float]:
        now = self.now()
        ts = now.timestamp()
        found = self._cache.get(period)
        if found is None or not found[1] <= ts < found[2]:
            pid, end = period_bounds(period, now)
            start = datetime.strptime(pid + ("-01" if period == "month" else ""), "%Y-%m-%d")
            found = self._cache[period] = (pid, start.replace(tzinfo=UTC).timestamp(), end)
        return found[0], found[2]


@dataclass(frozen=True, slots=True)
class Subject:
    """Something limits apply to, e.g. ("key", "k_123") within a tenant."""

    kind: SubjectKind
    name: str
    limits: Limits


@dataclass(frozen=True, slots=True)
class SubjectPlan:
    """One subject's limits as numbers for this request (0 / -1 = not limited)."""

    kind: SubjectKind
    name: str
    rpm: int = 0
    tpm: int = 0
    concurrency: int = 0
    budget: int = -1  # cost units per period
    period: str = ""  # e.g. "2026-11" or "2026-11-23"
    period_end: float = 0.0  # unix seconds

    @classmethod
    def build(cls, subject: Subject, periods: PeriodClock) -> SubjectPlan:
        lim = subject.limits
        budget, period, end = -1, "", 0.0
        if lim.budget is not None:
            budget = to_units(lim.budget.amount)
            period, end = periods.current(lim.budget.period)
        return cls(
            kind=subject.kind,
            name=subject.name,
            rpm=lim.rpm or 0,
            tpm=lim.tpm or 0,
            concurrency=lim.concurrency or 0,
            budget=budget,
            period=period,
            period_end=end,
        )


ReservationState = Literal["held", "settled", "released"]


@dataclass(slots=True, eq=False)
class Reservation:
    """What `QuotaService.admit` reserved; hand it back to `settle` or `release` once."""

    id: str
    tenant: str
    model: str
    plans: tuple[SubjectPlan, ...]
    est_tokens: int
    est_cost: int  # cost units
    # Admitted without reserving because the backend was unreachable and
    # quota.on_backend_error is "open".
    degraded: bool = False
    state: ReservationState = field(default="held")


@dataclass(frozen=True, slots=True)
class Denial:
    """Which subject and dimension refused, and when a retry could succeed (seconds)."""

    index: int
    dimension: Dimension
    kind: DenialKind
    retry_after: float


@dataclass(frozen=True, slots=True)
class SpendRow:
    """Recorded spend of one principal on one day (from usage), to seed memory budgets."""

    tenant: str
    principal_id: str
    key_id: str | None
    groups: frozenset[str]
    day: str  # YYYY-MM-DD (UTC)
    cost: float
