"""Step: may this principal use this logical model? (policy decision + key scopes)"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from opsgate.errors import Forbidden
from opsgate.gateway.call import GatewayCall
from opsgate.gateway.ports import AccessDecision, ModelAccess
from opsgate.gateway.settings import GatewaySettings
from opsgate.identity.principal import Principal


def scope_allows(principal: Principal, model: str) -> bool:
    """API-key scopes are globs; a scoped key needs one matching `model:<name>`."""
    if not principal.scopes:
        return True
    target = f"model:{model}"
    return any(fnmatchcase(target, s) for s in principal.scopes)


class RoleAccess:
    """Role check from the catalog (`models.<name>.roles`, else `default_roles`)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._s = settings

    async def decide(
        self, principal: Principal, model: str, context: dict[str, Any]
    ) -> AccessDecision:
        m = self._s.models.get(model)
        roles = (m.roles if m and m.roles else None) or self._s.default_roles
        if principal.has_role(*roles):
            return AccessDecision(True, [f"role in {sorted(roles)}"])
        return AccessDecision(False, [f"requires one of the roles {sorted(roles)}"])


async def check_access(call: GatewayCall, access: ModelAccess) -> None:
    if not scope_allows(call.principal, call.model_name):
        call.reasons.append("api key scope excludes this model")
        raise Forbidden(
            f"this API key is not scoped for model {call.model_name!r}", code="model_not_allowed"
        )
    decision = await access.decide(
        call.principal,
        call.model_name,
        {"operation": call.operation, "stream": call.stream},
    )
    call.reasons.extend(decision.reasons)
    if not decision.allow:
        raise Forbidden(
            f"you may not use model {call.model_name!r}: {'; '.join(decision.reasons)}",
            code="model_not_allowed",
        )
    call.in_tenant_only = call.in_tenant_only or decision.in_tenant_only
    call.max_tokens_cap = decision.max_tokens
    call.guard_actions = dict(decision.redact)
    call.max_cost = decision.max_cost
