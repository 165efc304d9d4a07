"""Policy endpoints: simulate a decision, search decision records, bundle status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query

from opsgate.audit import query
from opsgate.deps import RuntimeDep
from opsgate.identity.deps import require_roles
from opsgate.identity.principal import Principal

router = APIRouter(prefix="/api/v1/policy", tags=["policy"])
Reader = Annotated[Principal, Depends(require_roles("auditor"))]


@router.post("/simulate")
async def policy_simulate(
    p: Reader, rt: RuntimeDep, doc: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Evaluate a decision input without recording it. Bad input is a deny with its reason."""
    decision = await rt.policy.decide_document(doc)
    return decision.as_dict()


@router.get("/decisions")
async def policy_decisions(
    p: Reader,
    rt: RuntimeDep,
    outcome: Literal["allowed", "denied"] | None = None,
    actor: str | None = None,
    resource: str | None = None,
    since: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    await rt.audit.flush()
    f = query.EventFilter(
        action="policy.decision", actor=actor, resource=resource, outcome=outcome, since=since
    )
    items, nxt = await query.list_events(rt.db, p.tenant, f, cursor, limit)
    return {"items": items, "next_cursor": nxt}


@router.get("/bundle")
async def policy_bundle(p: Reader, rt: RuntimeDep) -> dict[str, Any]:
    svc = rt.policy
    return {
        "backend": svc.settings.backend,
        "revision": svc.revision,
        "loaded_at": svc.loaded_at.isoformat(),
        "last_error": svc.last_error,
    }
