"""The decision contract: input, obligations, decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

GateLevel = Literal["L0", "L1", "L2", "L3"]


# TypedDicts under one TypeAdapter, not models: the input is only checked, never used as an
# object, and skipping model instances makes the check ~40% cheaper (it runs per decision).
@with_config(ConfigDict(extra="ignore"))
class PrincipalIn(TypedDict):
    id: Annotated[str, Field(min_length=1, max_length=300)]
    kind: Literal["user", "service", "agent"]
    tenant: Annotated[str, Field(min_length=1, max_length=64)]
    groups: NotRequired[Annotated[list[str], Field(max_length=500)]]
    roles: NotRequired[Annotated[list[str], Field(max_length=50)]]


@with_config(ConfigDict(extra="allow"))
class ResourceIn(TypedDict):
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=300)]


@with_config(ConfigDict(extra="forbid"))
class DecisionInput(TypedDict):
    """What every caller sends. Unknown resource/context attributes pass through to Rego."""

    principal: PrincipalIn
    action: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_.*-]*$")]
    resource: ResourceIn
    context: NotRequired[dict[str, Any]]


DECISION_INPUT: TypeAdapter[DecisionInput] = TypeAdapter(DecisionInput)


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
