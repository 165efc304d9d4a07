"""Usage aggregation (GET /api/v1/usage) and the spend totals that seed memory budgets.

Everything is a plain SQL GROUP BY over indexed columns, identical on SQLite and
PostgreSQL; days come from the stored UTC `day` column. Teams are the one fold done in
Python: rows are grouped by their group set in SQL, then each set is split into teams (a
request counts once for each of its teams, so team totals may overlap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, func, select

from opsgate.db.base import Tenant
from opsgate.db.engine import Database
from opsgate.gateway.quota.reservation import SpendRow
from opsgate.gateway.usage.models import UsageRow
from opsgate.gateway.usage.recorder import decode_groups

GroupBy = Literal["principal", "team", "model", "day"]
NO_TEAM = "(none)"


@dataclass(slots=True)
class UsageBucket:
    key: str
    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency_ms_avg: float = 0.0

    def add(self, other: UsageBucket) -> None:
        n = self.requests + other.requests
        if n:
            self.latency_ms_avg = (
                self.latency_ms_avg * self.requests + other.latency_ms_avg * other.requests
            ) / n
        self.requests = n
        self.errors += other.errors
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost += other.cost


def utc(dt: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC."""
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _column(group_by: GroupBy) -> Any:
    return {
        "principal": UsageRow.principal_id,
        "team": UsageRow.groups,
        "model": UsageRow.model,
        "day": UsageRow.day,
    }[group_by]


async def aggregate(
    db: Database,
    tenant: str,
    *,
    group_by: GroupBy,
    since: datetime,
    until: datetime,
    principal_id: str | None = None,
    model: str | None = None,
) -> list[UsageBucket]:
    """Usage of `tenant` in [since, until), grouped; optionally one principal / model."""
    col = _column(group_by)
    errors = func.sum(case((UsageRow.status == "success", 0), else_=1))
    filters: list[ColumnElement[bool]] = [UsageRow.ts >= utc(since), UsageRow.ts < utc(until)]
    if principal_id is not None:
        filters.append(UsageRow.principal_id == principal_id)
    if model is not None:
        filters.append(UsageRow.model == model)
    stmt = (
        select(
            col,
            func.count(),
            errors,
            func.sum(UsageRow.tokens_in),
            func.sum(UsageRow.tokens_out),
            func.sum(UsageRow.cost),
            func.avg(UsageRow.latency_ms),
        )
        .where(UsageRow.tenant_id == tenant, *filters)
        .group_by(col)
    )
    async with db.session(tenant) as s:
        rows = (await s.execute(stmt)).all()
    buckets = [
        UsageBucket(
            key=str(r[0]),
            requests=int(r[1]),
            errors=int(r[2] or 0),
            tokens_in=int(r[3] or 0),
            tokens_out=int(r[4] or 0),
            cost=float(r[5] or 0.0),
            latency_ms_avg=float(r[6] or 0.0),
        )
        for r in rows
    ]
    if group_by == "team":
        buckets = _fold_teams(buckets)
    if group_by == "day":
        return sorted(buckets, key=lambda b: b.key)
    return sorted(buckets, key=lambda b: (-b.cost, -b.requests, b.key))


def _fold_teams(by_set: Sequence[UsageBucket]) -> list[UsageBucket]:
    teams: dict[str, UsageBucket] = {}
    for b in by_set:
        for team in decode_groups(b.key) or [NO_TEAM]:
            teams.setdefault(team, UsageBucket(team)).add(b)
    return list(teams.values())


def total(buckets: Sequence[UsageBucket], group_by: GroupBy) -> UsageBucket | None:
    """The sum over buckets; None for teams, where a request may count more than once."""
    if group_by == "team":
        return None
    out = UsageBucket("total")
    for b in buckets:
        out.add(b)
    return out


async def spend_since(db: Database, first_day: str) -> list[SpendRow]:
    """Cost per (tenant, principal, key, groups, day) from `first_day` (YYYY-MM-DD) on."""
    async with db.session(None) as s:
        tenants = list(
            (await s.execute(select(Tenant.id).where(Tenant.status == "active"))).scalars()
        )
    out: list[SpendRow] = []
    for tenant in tenants:
        stmt = (
            select(
                UsageRow.principal_id,
                UsageRow.key_id,
                UsageRow.groups,
                UsageRow.day,
                func.sum(UsageRow.cost),
            )
            .where(UsageRow.tenant_id == tenant, UsageRow.day >= first_day)
            .group_by(UsageRow.principal_id, UsageRow.key_id, UsageRow.groups, UsageRow.day)
        )
        async with db.session(tenant) as s:
            for r in (await s.execute(stmt)).all():
                out.append(
                    SpendRow(
                        tenant=tenant,
                        principal_id=r[0],
                        key_id=r[1],
                        groups=frozenset(decode_groups(r[2])),
                        day=r[3],
                        cost=float(r[4] or 0.0),
                    )
                )
    return out
