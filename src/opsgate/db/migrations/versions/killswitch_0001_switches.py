"""killswitch: operator-wide and tenant kill switches

Revision ID: killswitch_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls

revision = "killswitch_0001"
down_revision = None
branch_labels = ("killswitch",)
depends_on = "core_0001"


def _common() -> list[sa.Column[object]]:
    return [
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "kill_switches",
        *_common(),
        sa.PrimaryKeyConstraint("scope", "target", name="pk_kill_switches"),
    )
    op.create_table(
        "tenant_kill_switches",
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey(
                "tenants.id", ondelete="RESTRICT", name="fk_tenant_kill_switches_tenant_id_tenants"
            ),
            nullable=False,
        ),
        *_common(),
        sa.PrimaryKeyConstraint("tenant_id", "scope", "target", name="pk_tenant_kill_switches"),
    )
    enable_tenant_rls(op.get_bind(), "tenant_kill_switches")


def downgrade() -> None:
    op.drop_table("tenant_kill_switches")
    op.drop_table("kill_switches")
