"""Identity endpoints: who am I, API keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, status

from opsgate.audit.schemas import AuditEventIn
from opsgate.deps import RuntimeDep
from opsgate.errors import Forbidden
from opsgate.identity.deps import AdminPrincipal, CurrentPrincipal
from opsgate.identity.models import ApiKey
from opsgate.identity.schemas import KeyCreate, KeyCreated, KeyInfo, WhoAmI

router = APIRouter(prefix="/api/v1", tags=["identity"])


def _info(k: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=k.id,
        name=k.name,
        kind=k.kind,
        roles=k.roles,
        scopes=k.scopes,
        created_by=k.created_by,
        created_at=k.created_at,
        expires_at=k.expires_at,
        revoked_at=k.revoked_at,
    )


@router.get("/whoami", response_model=WhoAmI)
async def identity_whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI.of(principal)


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def identity_create_key(body: KeyCreate, admin: AdminPrincipal, rt: RuntimeDep) -> KeyCreated:
    if "admin" not in admin.roles and not set(body.roles) <= admin.roles:
        raise Forbidden("cannot grant roles you do not hold")
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    issued = await rt.identity.keys.create(
        tenant=admin.tenant,
        name=body.name,
        kind=body.kind,
        roles=list(body.roles),
        scopes=list(body.scopes),
        created_by=admin.id,
        expires_at=expires,
    )
    await rt.audit.emit(
        AuditEventIn(
            tenant=admin.tenant,
            actor=admin.id,
            action="apikey.create",
            resource=f"apikey:{issued.key_id}",
            outcome="success",
            payload={"name": body.name, "kind": body.kind, "roles": sorted(body.roles)},
        )
    )
    return KeyCreated(**_info(issued.record).model_dump(), key=issued.key)


@router.get("/keys", response_model=list[KeyInfo])
async def identity_list_keys(admin: AdminPrincipal, rt: RuntimeDep) -> list[KeyInfo]:
    return [_info(k) for k in await rt.identity.keys.list(admin.tenant)]


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def identity_revoke_key(key_id: str, admin: AdminPrincipal, rt: RuntimeDep) -> None:
    await rt.identity.revoke_key(admin.tenant, key_id, admin.id)
    await rt.audit.emit(
        AuditEventIn(
            tenant=admin.tenant,
            actor=admin.id,
            action="apikey.revoke",
            resource=f"apikey:{key_id}",
            outcome="success",
        )
    )
