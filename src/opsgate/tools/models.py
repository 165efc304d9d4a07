"""Executions of write tools: what ran, with which arguments, and the state before it.

The prior state is what makes undo possible: the inverse call's arguments are built from the
original arguments and this snapshot (ToolSpec.inverse maps them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, TenantScoped, utcnow


class ToolExecution(TenantScoped, Base):
    __tablename__ = "tool_executions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tool: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[str] = mapped_column(Text)  # canonical JSON
    actor: Mapped[str] = mapped_column(String(300))
    actor_kind: Mapped[str] = mapped_column(String(16))
    gate: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16))  # executed | failed
    prior: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    approval_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Undo links: this execution reverses `undo_of`; `undone_by` reversed this one; while an
    # undo waits for approval, `undo_approval_id` holds its request.
    undo_of: Mapped[str | None] = mapped_column(String(36), nullable=True)
    undone_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    undo_approval_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
