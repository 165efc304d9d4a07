"""guard: tenant custom rules

Revision ID: guard_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls

revision = "guard_0001"
down_revision = None
branch_labels = ("guard",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "guard_rules",
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(
                "tenants.id", ondelete="RESTRICT", name="fk_guard_rules_tenant_id_tenants"
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", name="pk_guard_rules"),
    )
    enable_tenant_rls(op.get_bind(), "guard_rules")


def downgrade() -> None:
    op.drop_table("guard_rules")
