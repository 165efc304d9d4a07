"""Wire types for identity endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from opsgate.identity.principal import Principal

Role = Literal["admin", "operator", "approver", "auditor", "user", "agent"]
# What a key may reach beyond its roles: `model:<glob>`, `tool:<glob>`, `route:<glob>`.
Scope = Annotated[str, StringConstraints(pattern=r"^(model|tool|route):[A-Za-z0-9_*./:-]{1,200}$")]


class WhoAmI(BaseModel):
    id: str
    kind: str
    tenant: str
    groups: list[str]
    roles: list[str]
    auth: str
    name: str

    @classmethod
    def of(cls, p: Principal) -> WhoAmI:
        return cls(
            id=p.id,
            kind=p.kind,
            tenant=p.tenant,
            groups=sorted(p.groups),
            roles=sorted(p.roles),
            auth=p.auth,
            name=p.name,
        )


def _default_roles() -> list[Role]:
    return ["user"]


class KeyCreate(BaseModel):
    # Unknown fields are refused: no mass assignment of tenant, hash, id, created_by…
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w .@:-]+$")
    kind: Literal["service", "agent"] = "service"
    roles: list[Role] = Field(default_factory=_default_roles, max_length=6)
    scopes: list[Scope] = Field(default_factory=list, max_length=50)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class KeyInfo(BaseModel):
    id: str
    name: str
    kind: str
    roles: list[str]
    scopes: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyInfo):
    key: str = Field(description="The API key. Shown only in this response.")
