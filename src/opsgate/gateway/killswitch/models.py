"""Kill-switch tables: operator-wide switches, and tenant-scoped ones (API keys).

Platform, model and deployment switches stop traffic for every tenant, so they live in a
platform table only operators change. An API key belongs to one tenant, so its switch is
tenant data under row-level security like any other. A row exists while the switch is on;
history (who flipped what, when and why) is in the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, TenantScoped, utcnow


class KillSwitchRow(Base):
    __tablename__ = "kill_switches"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    target: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TenantKillSwitchRow(TenantScoped, Base):
    __tablename__ = "tenant_kill_switches"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    target: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
