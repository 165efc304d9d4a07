"""Approvals inbox: list, show, approve, deny (as the human caller, never as a model); the
requester may withdraw their own pending request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from opsgate.approvals.models import ApprovalRequest
from opsgate.approvals.service import arguments_of
from opsgate.deps import RuntimeDep
from opsgate.errors import Conflict, NotFound
from opsgate.identity.deps import CurrentPrincipal, require_roles
from opsgate.identity.principal import Principal

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])
Approver = Annotated[Principal, Depends(require_roles("approver", "operator", "auditor"))]


class Decide(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000)


class ApprovalView(BaseModel):
    id: str
    status: str
    tool: str
    arguments: dict[str, Any]
    requester: str
    requester_kind: str
    rationale: str
    zone: str
    gate: str
    policy_revision: str
    policy_reasons: list[str]
    preview: dict[str, Any] | None
    approver_groups: list[str]
    required_approvals: int
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, r: ApprovalRequest) -> ApprovalView:
        return cls(
            id=r.id, status=r.status, tool=r.tool, arguments=arguments_of(r),
            requester=r.requester, requester_kind=r.requester_kind, rationale=r.rationale,
            zone=r.zone, gate=r.gate, policy_revision=r.policy_revision,
            policy_reasons=r.policy_reasons, preview=r.preview,
            approver_groups=r.approver_groups, required_approvals=r.required_approvals,
            created_at=r.created_at, expires_at=r.expires_at, decided_at=r.decided_at,
        )  # fmt: skip


@router.get("", response_model=list[ApprovalView])
async def approvals_list(
    p: Approver,
    rt: RuntimeDep,
    status: Literal[
        "pending", "approved", "denied", "expired", "executing", "executed", "failed", "cancelled"
    ]
    | None = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ApprovalView]:
    return [ApprovalView.of(r) for r in await rt.approvals.list_requests(p.tenant, status, limit)]


@router.get("/{approval_id}", response_model=ApprovalView)
async def approvals_show(approval_id: str, p: CurrentPrincipal, rt: RuntimeDep) -> ApprovalView:
    req = await rt.approvals.get(p.tenant, approval_id)
    if req.requester != p.id and not p.has_role("admin", "approver", "operator", "auditor"):
        raise NotFound(f"no approval request {approval_id!r}")
    return ApprovalView.of(req)


@router.post("/{approval_id}/approve", response_model=ApprovalView)
async def approvals_approve(
    approval_id: str, body: Decide, p: CurrentPrincipal, rt: RuntimeDep
) -> ApprovalView:
    return ApprovalView.of(
        await rt.approvals.decide(p, approval_id, approve=True, reason=body.reason)
    )


@router.post("/{approval_id}/deny", response_model=ApprovalView)
async def approvals_deny(
    approval_id: str, body: Decide, p: CurrentPrincipal, rt: RuntimeDep
) -> ApprovalView:
    return ApprovalView.of(
        await rt.approvals.decide(p, approval_id, approve=False, reason=body.reason)
    )


@router.post("/{approval_id}/withdraw", response_model=ApprovalView)
async def approvals_withdraw(
    approval_id: str, body: Decide, p: CurrentPrincipal, rt: RuntimeDep
) -> ApprovalView:
    """The requester withdraws their own request while nobody has decided it (-> cancelled)."""
    if not await rt.approvals.withdraw(p, approval_id, body.reason):
        req = await rt.approvals.get(p.tenant, approval_id)
        raise Conflict(f"approval request is already {req.status}", code=f"already_{req.status}")
    return ApprovalView.of(await rt.approvals.get(p.tenant, approval_id))
