"""usage: per-request usage ledger

Revision ID: usage_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls, make_append_only

revision = "usage_0001"
down_revision = None
branch_labels = ("usage",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(
                "tenants.id", ondelete="RESTRICT", name="fk_usage_records_tenant_id_tenants"
            ),
            nullable=False,
        ),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("principal_id", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=True),
        sa.Column("groups", sa.Text(), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("deployment", sa.String(128), nullable=True),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("route", sa.String(500), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_usage_records"),
    )
    op.create_index("ix_usage_records_tenant_day", "usage_records", ["tenant_id", "day"])
    op.create_index(
        "ix_usage_records_tenant_principal_day",
        "usage_records",
        ["tenant_id", "principal_id", "day"],
    )
    enable_tenant_rls(op.get_bind(), "usage_records")
    make_append_only(op.get_bind(), "usage_records")


def downgrade() -> None:
    op.drop_table("usage_records")
