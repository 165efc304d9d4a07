"""Approval requests and the decisions on them (durable: waits survive restarts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, TenantScoped, utcnow


class ApprovalRequest(TenantScoped, Base):
    __tablename__ = "approval_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tool: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly as approved
    requester: Mapped[str] = mapped_column(String(300))
    requester_kind: Mapped[str] = mapped_column(String(16))
    rationale: Mapped[str] = mapped_column(Text, default="")
    zone: Mapped[str] = mapped_column(String(64))
    gate: Mapped[str] = mapped_column(String(2))
    policy_revision: Mapped[str] = mapped_column(String(64))
    policy_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    preview: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    approver_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    escalation_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    # HMAC(secret_key, tool, arguments, requester, policy revision): what an approval binds to.
    digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    escalate_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    # Who asked, as authenticated (id, kind, groups, roles, scopes): an approved call runs as
    # this principal, re-authorised by policy, never as whatever a model later claims.
    requester_principal: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    # The guarded result of the one execution, for the requester's retries and status polls.
    result: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)


class ApprovalVote(TenantScoped, Base):
    __tablename__ = "approval_votes"

    approval_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    approver: Mapped[str] = mapped_column(String(300), primary_key=True)
    decision: Mapped[str] = mapped_column(String(8))  # approve | deny
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
