"""Step: may this principal use this logical model? (policy decision + key scopes)"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from opsgate.errors import Forbidden
from opsgate.gateway.call import GatewayCall
from opsgate.gateway.ports import AccessDecision, ModelAccess
from opsgate.identity.principal import Principal
from opsgate.policy.service import PolicyService


def scope_allows(principal: Principal, model: str) -> bool:
    """API-key scopes are globs; a scoped key needs one matching `model:<name>`."""
    if not principal.scopes:
        return True
    target = f"model:{model}"
    return any(fnmatchcase(target, s) for s in principal.scopes)


class PolicyAccess:
    """The policy engine's `model.invoke` decision behind the gateway's ModelAccess port.

    The decision is not recorded separately: the gateway's own audit event carries it
    (allow, reasons, obligations, bundle revision, input digest), one event per request.
    """

    def __init__(self, policy: PolicyService) -> None:
        self.policy = policy

    async def decide(
        self, principal: Principal, model: str, context: dict[str, Any]
    ) -> AccessDecision:
        d = await self.policy.decide(
            principal, "model.invoke", {"kind": "model", "name": model}, context, record=False
        )
        o = d.obligations
        return AccessDecision(
            d.allow,
            list(d.reasons),
            in_tenant_only=o.in_tenant_only,
            max_tokens=o.max_tokens,
            redact=dict(o.redact),
            record={
                "allow": d.allow,
                "bundle_revision": d.bundle_revision,
                "input_digest": d.input_digest,
                "obligations": o.as_dict(),
            },
        )


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
    call.policy = decision.record
    call.max_cost = decision.max_cost
