"""Wire types for GET /api/v1/usage."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from opsgate.gateway.usage.query import UsageBucket


class UsageRowOut(BaseModel):
    key: str
    requests: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost: float
    latency_ms_avg: float

    @classmethod
    def of(cls, b: UsageBucket) -> UsageRowOut:
        return cls(
            key=b.key,
            requests=b.requests,
            errors=b.errors,
            tokens_in=b.tokens_in,
            tokens_out=b.tokens_out,
            cost=round(b.cost, 8),
            latency_ms_avg=round(b.latency_ms_avg, 3),
        )


class UsageReport(BaseModel):
    group_by: Literal["principal", "team", "model", "day"]
    since: datetime
    until: datetime
    # "tenant": the whole tenant (admin, auditor); "self": the caller's own requests.
    scope: Literal["tenant", "self"]
    rows: list[UsageRowOut]
    # Sum of the rows; null when grouped by team (a request counts for each of its teams).
    total: UsageRowOut | None
    truncated: bool
