"""vault: secrets

Revision ID: vault_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls

revision = "vault_0001"
down_revision = None
branch_labels = ("vault",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("wrapped_dek", sa.LargeBinary, nullable=False),
        sa.Column("kek_id", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    enable_tenant_rls(op.get_bind(), "secrets")


def downgrade() -> None:
    op.drop_table("secrets")
