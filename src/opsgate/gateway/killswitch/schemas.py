"""Wire types for the kill-switch API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsgate.gateway.killswitch.state import Switch


class KillSwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["platform", "model", "deployment", "api_key"]
    # Model/deployment name or API key id; empty (or "*") for the platform switch.
    target: str = Field("", max_length=200)
    # Mandatory; shown to the callers who are refused, so never put secrets here.
    reason: str = Field(min_length=1, max_length=500)


class ReviveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class KillSwitchOut(BaseModel):
    scope: str
    target: str
    tenant: str | None
    reason: str
    actor: str
    at: datetime

    @classmethod
    def of(cls, s: Switch) -> KillSwitchOut:
        return cls(
            scope=s.scope,
            target=s.target,
            tenant=s.tenant,
            reason=s.reason,
            actor=s.actor,
            at=s.created_at,
        )


class KillSwitchList(BaseModel):
    items: list[KillSwitchOut]
