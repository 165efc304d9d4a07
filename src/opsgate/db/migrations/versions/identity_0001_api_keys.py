"""identity: api keys

Revision ID: identity_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls

revision = "identity_0001"
down_revision = None
branch_labels = ("identity",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    enable_tenant_rls(op.get_bind(), "api_keys")
    op.create_table(
        "api_key_index",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_tenant", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_key_index")
    op.drop_table("api_keys")
