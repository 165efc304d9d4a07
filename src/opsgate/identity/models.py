"""API key tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.db.base import Base, TenantScoped, utcnow


class ApiKey(TenantScoped, Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # HMAC-SHA256(secret_key, full key): a dump of this table cannot be replayed as a key and
    # cannot be brute-forced without the pepper, which lives outside the database.
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiKeyIndex(Base):
    """Platform-scoped map key id -> tenant.

    Authentication must find a key before it knows the tenant, but `api_keys` is under forced
    row-level security. This table holds no secret material (only the public key id), so it can
    be readable without a tenant; the hash is then read inside the tenant's session.
    """

    __tablename__ = "api_key_index"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_tenant: Mapped[str] = mapped_column(String(64), ForeignKey("tenants.id"))
