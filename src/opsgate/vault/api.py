"""Secrets API: write-only. No endpoint returns a secret value."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import select

from opsgate.audit.schemas import AuditEventIn
from opsgate.db.base import Tenant
from opsgate.deps import RuntimeDep
from opsgate.identity.deps import AdminPrincipal
from opsgate.identity.principal import Principal
from opsgate.runtime import Runtime
from opsgate.vault.service import SecretInfo, check_name

router = APIRouter(prefix="/api/v1/secrets", tags=["vault"])


class SecretPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: SecretStr = Field(min_length=1)
    description: str = Field("", max_length=500)


class SecretMeta(BaseModel):
    name: str
    version: int
    kek_id: str
    description: str
    created_by: str
    updated_at: datetime
    reference: str

    @classmethod
    def of(cls, i: SecretInfo) -> SecretMeta:
        return cls(**i.__dict__, reference=f"secret://{i.name}")


async def _audit(rt: Runtime, p: Principal, action: str, name: str) -> None:
    await rt.audit.emit(
        AuditEventIn(
            tenant=p.tenant, actor=p.id, action=action, resource=f"secret:{name}", outcome="success"
        )
    )


@router.put("/{name}", response_model=SecretMeta)
async def vault_put_secret(
    name: str, body: SecretPut, p: AdminPrincipal, rt: RuntimeDep
) -> SecretMeta:
    check_name(name)
    info = await rt.vault.put(
        p.tenant, name, body.value.get_secret_value(), actor=p.id, description=body.description
    )
    await _audit(rt, p, "secret.put", name)
    return SecretMeta.of(info)


@router.get("", response_model=list[SecretMeta])
async def vault_list_secrets(p: AdminPrincipal, rt: RuntimeDep) -> list[SecretMeta]:
    return [SecretMeta.of(i) for i in await rt.vault.list_meta(p.tenant)]


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def vault_delete_secret(name: str, p: AdminPrincipal, rt: RuntimeDep) -> None:
    await rt.vault.delete(p.tenant, name)
    await _audit(rt, p, "secret.delete", name)


@router.post("/rotate-kek")
async def vault_rotate_kek(p: AdminPrincipal, rt: RuntimeDep) -> dict[str, int]:
    """Re-wrap every data key of every tenant under the current (new) KEK."""
    async with rt.db.session(None) as s:
        tenants = list((await s.execute(select(Tenant.id))).scalars())
    n = await rt.vault.rotate_kek(tenants)
    await _audit(rt, p, "secret.rotate_kek", "*")
    return {"rewrapped": n}
