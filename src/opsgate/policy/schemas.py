"""The decision contract: input, obligations, decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GateLevel = Literal["L0", "L1", "L2", "L3"]
_Str = Field(max_length=500)


class PrincipalIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=300)
    kind: Literal["user", "service", "agent"]
    tenant: str = Field(min_length=1, max_length=64)
    groups: list[str] = Field(default_factory=list, max_length=500)
    roles: list[str] = Field(default_factory=list, max_length=50)


class ResourceIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=300)


class DecisionInput(BaseModel):
    """What every caller sends. Unknown resource/context attributes pass through to Rego."""

    model_config = ConfigDict(extra="forbid")
    principal: PrincipalIn
    action: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_.*-]*$")
    resource: ResourceIn
    context: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Obligations:
    gate: GateLevel = "L0"
    redact: dict[str, str] = field(default_factory=dict)
    in_tenant_only: bool = False
    max_tokens: int | None = None
    approver_groups: tuple[str, ...] = ()
    alert: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "redact": dict(self.redact),
            "in_tenant_only": self.in_tenant_only,
            "max_tokens": self.max_tokens,
            "approver_groups": list(self.approver_groups),
            "alert": self.alert,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    obligations: Obligations
    bundle_revision: str
    input_digest: str
    error: bool = False

    @property
    def requires_approval(self) -> bool:
        return self.allow and self.obligations.gate in ("L2", "L3")

    def as_dict(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "obligations": self.obligations.as_dict(),
            "bundle_revision": self.bundle_revision,
            "input_digest": self.input_digest,
            "requires_approval": self.requires_approval,
        }
