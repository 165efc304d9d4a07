"""The in-memory kill-switch set every check reads: dictionary lookups, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Scope = Literal["platform", "model", "deployment", "api_key"]
SCOPES: tuple[Scope, ...] = ("platform", "model", "deployment", "api_key")
# Operator-wide scopes (platform table); the rest are tenant-scoped. A future "assistant"
# scope joins TENANT_SCOPES and gets its own check method.
OPERATOR_SCOPES: frozenset[str] = frozenset({"platform", "model", "deployment"})
TENANT_SCOPES: frozenset[str] = frozenset({"api_key"})
PLATFORM_TARGET = "*"


@dataclass(frozen=True, slots=True)
class Switch:
    scope: Scope
    target: str
    tenant: str | None  # None for operator-wide switches
    reason: str
    actor: str
    created_at: datetime

    def as_event(self, op: Literal["kill", "revive"]) -> dict[str, Any]:
        return {
            "op": op,
            "scope": self.scope,
            "target": self.target,
            "tenant": self.tenant,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.created_at.isoformat(),
        }

    @classmethod
    def from_event(cls, ev: dict[str, Any]) -> tuple[Literal["kill", "revive"], Switch] | None:
        """Parse a bus event; None when malformed (it is ignored; the reload repairs)."""
        op, scope, target = ev.get("op"), ev.get("scope"), ev.get("target")
        tenant, reason, actor = ev.get("tenant"), ev.get("reason"), ev.get("actor")
        if op not in ("kill", "revive") or scope not in SCOPES or not isinstance(target, str):
            return None
        if not isinstance(reason, str) or not isinstance(actor, str):
            return None
        if (scope in TENANT_SCOPES) != isinstance(tenant, str):
            return None
        try:
            at = datetime.fromisoformat(str(ev.get("at")))
        except ValueError:
            return None
        return op, cls(scope, target, tenant, reason, actor, at)


class SwitchSet:
    """Active switches indexed for O(1) checks."""

    def __init__(self, switches: list[Switch] | None = None) -> None:
        self.platform: Switch | None = None
        self.models: dict[str, Switch] = {}
        self.deployments: dict[str, Switch] = {}
        # key id -> tenant -> switch (key ids are unique, but the tenant is checked too)
        self.keys: dict[str, dict[str, Switch]] = {}
        for s in switches or []:
            self.apply("kill", s)

    def apply(self, op: Literal["kill", "revive"], s: Switch) -> None:
        if s.scope == "platform":
            self.platform = s if op == "kill" else None
        elif s.scope in ("model", "deployment"):
            table = self.models if s.scope == "model" else self.deployments
            if op == "kill":
                table[s.target] = s
            else:
                table.pop(s.target, None)
        else:
            assert s.tenant is not None
            by_tenant = self.keys.setdefault(s.target, {})
            if op == "kill":
                by_tenant[s.tenant] = s
            else:
                by_tenant.pop(s.tenant, None)
                if not by_tenant:
                    del self.keys[s.target]

    def key(self, key_id: str, tenant: str | None) -> Switch | None:
        by_tenant = self.keys.get(key_id)
        if not by_tenant:
            return None
        if tenant is None:
            return next(iter(by_tenant.values()))
        return by_tenant.get(tenant)

    def all(self) -> list[Switch]:
        out = [self.platform] if self.platform is not None else []
        out += self.models.values()
        out += self.deployments.values()
        for by_tenant in self.keys.values():
            out += by_tenant.values()
        return out

    def counts(self) -> dict[str, int]:
        return {
            "platform": int(self.platform is not None),
            "model": len(self.models),
            "deployment": len(self.deployments),
            "api_key": sum(len(v) for v in self.keys.values()),
        }
