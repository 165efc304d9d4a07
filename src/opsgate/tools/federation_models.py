"""Approved fingerprints of upstream MCP tools (federation; docs/tools-federation.md).

Upstreams are defined by operators in configuration and serve every tenant, so approvals are
platform data like the operator kill switches: no tenant column, changed only by admins of the
operator tenant. One row per (upstream, upstream tool name) holds the fingerprint that was
approved last; the history of approvals is in the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, utcnow


class UpstreamToolApproval(Base):
    __tablename__ = "upstream_tool_approvals"

    upstream: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool: Mapped[str] = mapped_column(String(200), primary_key=True)  # the upstream's own name
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 hex, see federation.fingerprint
    approved_by: Mapped[str] = mapped_column(String(300))  # principal id or "trust_on_first_use"
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
