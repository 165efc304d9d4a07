"""Audit tables: the event chain and its signed checkpoints (both append-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, TenantScoped


class AuditEvent(TenantScoped, Base):
    """One event. `data` is the canonical JSON the hashes cover; the other columns are copies
    for querying, cross-checked against `data` by verification."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_action", "tenant_id", "action", "seq"),
        Index("ix_audit_events_ts", "tenant_id", "ts"),
        {"info": {"append_only": True}},
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    resource: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(16))
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # SHA-256(previous hash || data); the first event of a tenant chains from 32 zero bytes.
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(TenantScoped, Base):
    """Ed25519-signed (size, Merkle root, last hash) of a tenant's chain."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = ({"info": {"append_only": True}},)

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    last_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))
    # Perfect-subtree roots at `size`, so a restarted writer resumes without re-reading all.
    frontier: Mapped[str] = mapped_column(Text)
