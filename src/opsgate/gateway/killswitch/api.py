"""Kill-switch endpoints: list, kill (POST), revive (DELETE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, status

from opsgate.deps import RuntimeDep
from opsgate.errors import Forbidden, NotFound, Unavailable, ValidationFailed
from opsgate.gateway.killswitch.schemas import KillSwitchIn, KillSwitchList, KillSwitchOut, ReviveIn
from opsgate.gateway.killswitch.service import KillSwitches
from opsgate.gateway.killswitch.state import OPERATOR_SCOPES, SCOPES
from opsgate.identity.deps import require_roles
from opsgate.identity.principal import Principal
from opsgate.runtime import Runtime

router = APIRouter(prefix="/api/v1/killswitches", tags=["killswitches"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]
Viewer = Annotated[Principal, Depends(require_roles("admin", "operator", "auditor"))]


def _switches(rt: Runtime) -> KillSwitches:
    if rt.killswitches is None:
        raise Unavailable("kill switches are not running")
    return rt.killswitches


async def _authorise(rt: Runtime, p: Principal, scope: str, target: str) -> None:
    """Operator-wide scopes: admins of the operator tenant only. API keys: the caller's
    own tenant's keys only."""
    if scope in OPERATOR_SCOPES:
        if p.tenant != rt.settings.default_tenant:
            raise Forbidden(
                f"{scope} kill switches affect every tenant; only admins of the operator "
                "tenant may flip them"
            )
        return
    if scope == "api_key":
        keys = await rt.identity.keys.list(p.tenant)
        if target not in {k.id for k in keys}:
            raise NotFound(f"no API key {target!r} in this tenant")


def _trace(request: Request) -> str | None:
    return getattr(request.state, "trace_id", None)


@router.get("", response_model=KillSwitchList)
async def killswitch_list(p: Viewer, rt: RuntimeDep) -> KillSwitchList:
    """Active kill switches: every operator-wide one, and this tenant's own."""
    items = sorted(
        _switches(rt).active(p.tenant), key=lambda s: (s.scope, s.tenant or "", s.target)
    )
    return KillSwitchList(items=[KillSwitchOut.of(s) for s in items])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KillSwitchOut)
async def killswitch_kill(
    body: KillSwitchIn, p: Admin, rt: RuntimeDep, request: Request
) -> KillSwitchOut:
    """Switch a scope off on every replica within a second; the reason is mandatory."""
    ks = _switches(rt)
    await _authorise(rt, p, body.scope, body.target)
    sw = await ks.kill(
        body.scope, body.target, actor=p, reason=body.reason, tenant=p.tenant,
        trace_id=_trace(request),
    )  # fmt: skip
    return KillSwitchOut.of(sw)


@router.delete("/{scope}/{target}", response_model=KillSwitchOut)
async def killswitch_revive(
    scope: str,
    target: str,
    p: Admin,
    rt: RuntimeDep,
    request: Request,
    reason: Annotated[str | None, Query(max_length=500)] = None,
    body: Annotated[ReviveIn | None, Body()] = None,
) -> KillSwitchOut:
    """Switch back on; the reason comes in the body or the `reason` query parameter."""
    ks = _switches(rt)
    why = body.reason if body is not None else reason
    if not why:
        raise ValidationFailed(
            "a reason is required",
            errors=[{"field": "reason", "message": "required", "type": "missing"}],
        )
    if scope not in SCOPES:
        raise NotFound(f"unknown scope {scope!r}")
    await _authorise(rt, p, scope, target)
    sw = await ks.revive(
        scope, target, actor=p, reason=why, tenant=p.tenant, trace_id=_trace(request)
    )
    return KillSwitchOut.of(sw)
