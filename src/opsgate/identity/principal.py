"""The principal: who is asking. Every component after authentication receives one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["user", "service", "agent"]


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    kind: PrincipalKind
    tenant: str
    groups: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)
    # How the principal authenticated ("api_key" | "jwt") and the credential's id
    # (API key id or token `jti`); never the credential itself.
    auth: str = "api_key"
    credential_id: str | None = None
    # API-key scopes: glob patterns of routes/models/tools this key may use; empty = no limit
    # beyond roles and policy.
    scopes: frozenset[str] = field(default_factory=frozenset)
    name: str = ""

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_ai(self) -> bool:
        """Agents (and services acting for a model) may not perform L3 operations."""
        return self.kind == "agent"

    def as_policy_input(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "tenant": self.tenant,
            "groups": sorted(self.groups),
            "roles": sorted(self.roles),
            "auth": self.auth,
        }
