"""Tenant custom guard rules (the API's store; YAML rules live in files)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, TenantScoped, utcnow


class GuardRuleRow(TenantScoped, Base):
    __tablename__ = "guard_rules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The rule as validated JSON (`CustomRule`); re-validated when loaded.
    spec: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
