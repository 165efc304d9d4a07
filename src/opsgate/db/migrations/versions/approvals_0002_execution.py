"""approvals: requester snapshot and execution result

Revision ID: approvals_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "approvals_0002"
down_revision = "approvals_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as b:
        b.add_column(sa.Column("requester_principal", sa.JSON, nullable=True))
        b.add_column(sa.Column("result", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as b:
        b.drop_column("result")
        b.drop_column("requester_principal")
