"""audit: events and checkpoints

Revision ID: audit_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls, make_append_only

revision = "audit_0001"
down_revision = None
branch_labels = ("audit",)
depends_on = "core_0001"


def upgrade() -> None:
    tenant = sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True)
    op.create_table(
        "audit_events",
        tenant,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resource", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_audit_events_action", "audit_events", ["tenant_id", "action", "seq"])
    op.create_index("ix_audit_events_ts", "audit_events", ["tenant_id", "ts"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("frontier", sa.Text, nullable=False),
    )
    bind = op.get_bind()
    for table in ("audit_events", "audit_checkpoints"):
        enable_tenant_rls(bind, table)
        make_append_only(bind, table)


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_events")
