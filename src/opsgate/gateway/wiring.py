"""Builds the gateway service from the runtime's other services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsgate.gateway.adapters import GuardAdapter, GuardOff, KillSwitchesOff, QuotaOff, UsageToLog
from opsgate.gateway.pipeline import Governance
from opsgate.gateway.service import GatewayService
from opsgate.gateway.steps.access import RoleAccess

if TYPE_CHECKING:
    from opsgate.runtime import Runtime


def build_gateway(rt: Runtime) -> GatewayService | None:
    s = rt.settings.gateway
    if not s.enabled:
        return None
    governance = Governance(
        access=RoleAccess(s),
        guard=GuardAdapter(rt.guard) if rt.guard is not None else GuardOff(),
        quota=QuotaOff(),
        killswitch=KillSwitchesOff(),
        usage=UsageToLog(),
        audit=rt.audit,
    )
    return GatewayService(
        s,
        governance=governance,
        secrets=None,
        registry=rt.metrics.registry,
        tracer=rt.tracing.tracer,
    )
