"""tools: per-tenant zone overrides

Revision ID: tools_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls

revision = "tools_0003"
down_revision = "tools_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zone_overrides",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("zone", sa.String(64), primary_key=True),
        sa.Column("default_gate", sa.String(2), nullable=True),
        sa.Column("sensitivity", sa.String(16), nullable=True),
        sa.Column("extra_process_areas", sa.JSON, nullable=False),
        sa.Column("updated_by", sa.String(300), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    enable_tenant_rls(op.get_bind(), "zone_overrides")


def downgrade() -> None:
    op.drop_table("zone_overrides")
