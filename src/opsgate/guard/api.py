"""Guard HTTP API: scan/redact as a service, and tenant custom rules (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from opsgate.deps import RuntimeDep
from opsgate.errors import Unavailable, ValidationFailed
from opsgate.guard.custom import CustomRule
from opsgate.guard.findings import ScanContext
from opsgate.guard.policy import Action
from opsgate.guard.schemas import (
    FindingOut,
    RedactIn,
    RedactOut,
    RulesIn,
    RulesOut,
    ScanIn,
    ScanOut,
)
from opsgate.guard.service import GuardService
from opsgate.identity.deps import CurrentPrincipal, require_roles
from opsgate.identity.principal import Principal

router = APIRouter(prefix="/api/v1/guard", tags=["guard"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]


def _svc(rt: RuntimeDep) -> GuardService:
    svc: GuardService | None = getattr(rt, "guard", None)
    if svc is None:
        raise Unavailable("the guard is disabled (guard.enabled: false)")
    return svc


GuardDep = Annotated[GuardService, Depends(_svc)]


@router.post("/scan", response_model=ScanOut)
async def guard_scan(body: ScanIn, p: CurrentPrincipal, svc: GuardDep) -> ScanOut:
    """Findings (type, offsets in characters, score, detector) - never the values."""
    ctx = ScanContext(direction=body.context.direction, tenant=p.tenant)
    r = await svc.scan(p.tenant, body.text, ctx)
    return ScanOut(
        findings=[FindingOut(**f.public()) for f in r.findings],
        classification=r.classification,
        injection_score=r.injection_score,
        ner=r.ner,
        notes=r.notes,
    )


@router.post("/redact", response_model=RedactOut)
async def guard_redact(body: RedactIn, p: CurrentPrincipal, svc: GuardDep) -> RedactOut:
    """The text with each finding handled by its action; 403 when an action is `block`.

    `pseudonymise` answers with placeholders that this endpoint cannot restore later
    (the mapping lives for one request only).
    """
    ctx = ScanContext(direction=body.context.direction, tenant=p.tenant)
    actions = {k: Action(v) for k, v in body.actions.items()}
    result, applied = await svc.redact(p.tenant, body.text, ctx, actions)
    await svc.record(tenant=p.tenant, actor=p.id, ctx=ctx, result=result, applied=applied)
    applied.raise_if_blocked("text")
    return RedactOut(
        text=applied.text,
        findings=[FindingOut(**f.public()) for f in result.findings],
        classification=result.classification,
        injection_score=result.injection_score,
        flagged=sorted({f.type for f in applied.flagged}),
    )


@router.get("/rules", response_model=RulesOut)
async def guard_list_rules(p: Admin, svc: GuardDep) -> RulesOut:
    return RulesOut(rules=[r.model_dump() for r in await svc.stored_rules(p.tenant)])


@router.put("/rules", response_model=RulesOut)
async def guard_replace_rules(body: RulesIn, p: Admin, svc: GuardDep) -> RulesOut:
    """Replace the tenant's API-managed rules (YAML rules are not touched)."""
    await svc.replace_rules(p.tenant, body.rules, p.id)
    return RulesOut(rules=[r.model_dump() for r in body.rules])


@router.delete("/rules", status_code=204)
async def guard_delete_rules(p: Admin, svc: GuardDep) -> Response:
    await svc.delete_rule(p.tenant, None, p.id)
    return Response(status_code=204)


@router.put("/rules/{name}", response_model=CustomRule)
async def guard_put_rule(name: str, body: CustomRule, p: Admin, svc: GuardDep) -> CustomRule:
    if body.name != name:
        raise ValidationFailed("the rule's name must match the path")
    await svc.put_rule(p.tenant, body, p.id)
    return body


@router.delete("/rules/{name}", status_code=204)
async def guard_delete_rule(name: str, p: Admin, svc: GuardDep) -> Response:
    await svc.delete_rule(p.tenant, name, p.id)
    return Response(status_code=204)
