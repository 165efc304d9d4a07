"""tools: executions of write tools (prior state for undo)

Revision ID: tools_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls

revision = "tools_0002"
down_revision = "tools_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tool_executions",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("gate", sa.String(2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("prior", sa.JSON, nullable=True),
        sa.Column("approval_id", sa.String(36), nullable=True),
        sa.Column("undo_of", sa.String(36), nullable=True),
        sa.Column("undone_by", sa.String(36), nullable=True),
        sa.Column("undo_approval_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tool_executions_created", "tool_executions", ["tenant_id", "created_at"])
    enable_tenant_rls(op.get_bind(), "tool_executions")


def downgrade() -> None:
    op.drop_table("tool_executions")
