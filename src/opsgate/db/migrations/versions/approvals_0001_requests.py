"""approvals: requests and votes

Revision ID: approvals_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opsgate.db.rls import enable_tenant_rls

revision = "approvals_0001"
down_revision = None
branch_labels = ("approvals",)
depends_on = "core_0001"


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True)


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "approval_requests",
        _tenant(),
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("requester", sa.String(300), nullable=False),
        sa.Column("requester_kind", sa.String(16), nullable=False),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("gate", sa.String(2), nullable=False),
        sa.Column("policy_revision", sa.String(64), nullable=False),
        sa.Column("policy_reasons", sa.JSON, nullable=False),
        sa.Column("preview", sa.JSON, nullable=True),
        sa.Column("approver_groups", sa.JSON, nullable=False),
        sa.Column("escalation_groups", sa.JSON, nullable=False),
        sa.Column("required_approvals", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("escalate_at", tz, nullable=True),
        sa.Column("expires_at", tz, nullable=False),
        sa.Column("decided_at", tz, nullable=True),
        sa.Column("executed_at", tz, nullable=True),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_index("ix_approval_requests_status", "approval_requests", ["tenant_id", "status"])
    op.create_table(
        "approval_votes",
        _tenant(),
        sa.Column("approval_id", sa.String(36), primary_key=True),
        sa.Column("approver", sa.String(300), primary_key=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )
    for t in ("approval_requests", "approval_votes"):
        enable_tenant_rls(op.get_bind(), t)


def downgrade() -> None:
    op.drop_table("approval_votes")
    op.drop_table("approval_requests")
