"""Usage-recording settings (under `gateway.quota.usage`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UsageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Records waiting for the writer; when full, new records are dropped (counted and logged)
    # rather than slowing model requests down.
    queue_max: int = Field(50_000, ge=100, le=10_000_000)
    batch_max: int = Field(500, ge=1, le=10_000)
    # How long the writer waits to gather more records into one insert.
    batch_linger_ms: float = Field(50.0, ge=0, le=10_000)
    # The widest range GET /api/v1/usage accepts.
    max_query_days: int = Field(400, ge=1, le=3660)
