"""tools: approved fingerprints of federated upstream MCP tools

Revision ID: tools_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tools_0001"
down_revision = None
branch_labels = ("tools",)
depends_on = "core_0001"


def upgrade() -> None:
    # Platform table (operator configuration serves every tenant): no tenant_id, no RLS.
    op.create_table(
        "upstream_tool_approvals",
        sa.Column("upstream", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("approved_by", sa.String(300), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("upstream", "tool", name="pk_upstream_tool_approvals"),
    )


def downgrade() -> None:
    op.drop_table("upstream_tool_approvals")
