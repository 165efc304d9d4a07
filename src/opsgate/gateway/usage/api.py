"""GET /api/v1/usage: usage aggregated by principal, team, model or day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from opsgate.deps import RuntimeDep
from opsgate.errors import Forbidden, ValidationFailed
from opsgate.gateway.usage.query import GroupBy, aggregate, total, utc
from opsgate.gateway.usage.schemas import UsageReport, UsageRowOut
from opsgate.identity.deps import CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["usage"])

TENANT_WIDE_ROLES = ("admin", "auditor")
DEFAULT_DAYS = 30


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        "request failed validation",
        errors=[{"field": f"query.{field}", "message": message, "type": "value_error"}],
    )


@router.get("/usage", response_model=UsageReport)
async def usage_report(
    p: CurrentPrincipal,
    rt: RuntimeDep,
    group_by: GroupBy = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    principal: Annotated[str | None, Query(max_length=200)] = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> UsageReport:
    """Admins and auditors see their tenant (optionally one `principal`); everyone else
    sees only their own requests. `since` is inclusive, `until` exclusive (UTC)."""
    end = utc(until) if until else datetime.now(UTC)
    start = utc(since) if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise _bad("since", "must be before until")
    max_days = rt.settings.gateway.quota.usage.max_query_days
    if end - start > timedelta(days=max_days):
        raise _bad("since", f"the range may span at most {max_days} days")
    tenant_wide = p.has_role(*TENANT_WIDE_ROLES)
    if not tenant_wide and principal is not None and principal != p.id:
        raise Forbidden("only admins and auditors may see other principals' usage")
    who = principal if tenant_wide else p.id
    buckets = await aggregate(
        rt.db, p.tenant, group_by=group_by, since=start, until=end, principal_id=who,
        model=model,
    )  # fmt: skip
    summed = total(buckets, group_by)
    return UsageReport(
        group_by=group_by,
        since=start,
        until=end,
        scope="tenant" if tenant_wide else "self",
        rows=[UsageRowOut.of(b) for b in buckets[:limit]],
        total=UsageRowOut.of(summed) if summed is not None else None,
        truncated=len(buckets) > limit,
    )
