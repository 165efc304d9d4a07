"""Audit endpoints: search, verify, proofs, the checkpoint public key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from opsgate.audit import query
from opsgate.audit.service import AuditLog
from opsgate.audit.verify import verify
from opsgate.deps import RuntimeDep
from opsgate.errors import Unavailable
from opsgate.identity.deps import require_roles
from opsgate.identity.principal import Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Reader = Annotated[Principal, Depends(require_roles("auditor"))]


def _log(rt: RuntimeDep) -> AuditLog:
    if not isinstance(rt.audit, AuditLog):
        raise Unavailable("audit log is not durable in this instance")
    return rt.audit


@router.get("")
async def audit_list_events(
    p: Reader,
    rt: RuntimeDep,
    action: str | None = None,
    action_prefix: Annotated[str | None, Query(max_length=100)] = None,
    actor: str | None = None,
    resource: str | None = None,
    outcome: Literal["allowed", "denied", "error", "success", "failure", "pending", "info"]
    | None = None,
    trace_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    await rt.audit.flush()  # read-your-writes for the caller
    f = query.EventFilter(action, action_prefix, actor, resource, outcome, trace_id, since, until)
    items, nxt = await query.list_events(rt.db, p.tenant, f, cursor, limit)
    return {"items": items, "next_cursor": nxt}


@router.get("/verify")
async def audit_verify(p: Reader, rt: RuntimeDep) -> dict[str, Any]:
    log = _log(rt)
    await log.flush()
    # One process: an API call must not take every core (and, on PostgreSQL, connections
    # outside the pool) from the traffic this server is serving. The CLI verifies in parallel.
    report = await verify(
        rt.db, [p.tenant], {log.signer.key_id: log.signer.public_hex()}, workers=1
    )
    return report.as_dict()


@router.get("/public-key")
async def audit_public_key(p: Reader, rt: RuntimeDep) -> dict[str, str]:
    log = _log(rt)
    return {
        "key_id": log.signer.key_id,
        "algorithm": "Ed25519",
        "public_key": log.signer.public_hex(),
    }


@router.get("/checkpoints")
async def audit_checkpoints(p: Reader, rt: RuntimeDep) -> list[dict[str, Any]]:
    return await query.checkpoints(rt.db, p.tenant)


@router.get("/proof/{seq}")
async def audit_proof(seq: int, p: Reader, rt: RuntimeDep) -> dict[str, Any]:
    return await query.proof(rt.db, p.tenant, seq)
