"""Builds the gateway service from the runtime's other services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsgate.gateway.adapters import (
    GuardAdapter,
    GuardOff,
    KillSwitchAdapter,
    KillSwitchesOff,
    QuotaAdapter,
    QuotaOff,
    UsageAdapter,
    UsageToLog,
    VaultSecrets,
)
from opsgate.gateway.pipeline import Governance
from opsgate.gateway.ports import KillSwitchGate, QuotaGate, UsageSink
from opsgate.gateway.service import GatewayService
from opsgate.gateway.steps.access import PolicyAccess

if TYPE_CHECKING:
    from opsgate.runtime import Runtime


def build_gateway(rt: Runtime) -> GatewayService | None:
    """The gateway over the runtime's guard, identity, quota, kill switches, usage, audit.

    Components switched off in configuration get their "off" adapter.
    """
    s = rt.settings.gateway
    if not s.enabled:
        return None
    # Started by opsgate.gateway.quota.controls before this runs.
    ks: KillSwitchGate = (
        KillSwitchAdapter(rt.killswitches) if rt.killswitches is not None else KillSwitchesOff()
    )
    q: QuotaGate = QuotaAdapter(rt.quota) if rt.quota is not None else QuotaOff()
    u: UsageSink = UsageAdapter(rt.usage) if rt.usage is not None else UsageToLog()
    governance = Governance(
        access=PolicyAccess(rt.policy),
        guard=GuardAdapter(rt.guard) if rt.guard is not None else GuardOff(),
        quota=q,
        killswitch=ks,
        usage=u,
        audit=rt.audit,
    )
    return GatewayService(
        s,
        governance=governance,
        secrets=VaultSecrets(rt.vault, s.secrets_tenant),
        registry=rt.metrics.registry,
        tracer=rt.tracing.tracer,
    )
