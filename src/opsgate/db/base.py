"""Declarative base and the tenant-scoping mixin every tenant table uses."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TenantScoped:
    """Mixin: a `tenant_id` column that is part of the primary key.

    Keys and uniqueness are tenant-scoped because unique and foreign-key checks see across
    tenants even under row-level security. Sessions bound to a tenant filter on it
    automatically (see `opsgate.db.engine`), and PostgreSQL enforces it with forced RLS.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:
        # sort_order puts tenant_id first, so keys read `(tenant_id, id)` everywhere,
        # including `session.get(Model, (tenant, id))`.
        return mapped_column(
            String(64),
            ForeignKey("tenants.id", ondelete="RESTRICT"),
            primary_key=True,
            sort_order=-10,
        )


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
