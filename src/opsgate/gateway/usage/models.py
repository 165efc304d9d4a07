"""The usage ledger: one row per model request (tenant-scoped, append-only).

Only accounting facts are stored: who (ids, never credentials), which model and route,
token counts, cost, latency, status. Never prompt or response text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, TenantScoped


class UsageRow(TenantScoped, Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_tenant_day", "tenant_id", "day"),
        Index("ix_usage_records_tenant_principal_day", "tenant_id", "principal_id", "day"),
        {"info": {"append_only": True}},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # UTC date "YYYY-MM-DD", stored so day grouping is the same plain GROUP BY on every
    # database (no dialect date functions).
    day: Mapped[str] = mapped_column(String(10))
    request_id: Mapped[str | None] = mapped_column(String(64))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    principal_id: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(128))
    # Directory groups as "|a|b|" (sorted), "" when none.
    groups: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str | None] = mapped_column(String(128))
    provider: Mapped[str | None] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(500))
    tokens_in: Mapped[int] = mapped_column(Integer)
    tokens_out: Mapped[int] = mapped_column(Integer)
    cost: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(64))
    stream: Mapped[bool] = mapped_column(Boolean)
