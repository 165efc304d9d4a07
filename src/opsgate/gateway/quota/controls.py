"""Starts the gateway's traffic controls onto the runtime: kill switches, quotas, usage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsgate.gateway.killswitch.service import KillSwitches, catalog_from
from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.usage.recorder import UsageRecorder

if TYPE_CHECKING:
    from opsgate.runtime import Runtime


async def start_gateway_controls(rt: Runtime) -> None:
    """Set `rt.killswitches`, `rt.quota` (if enabled) and `rt.usage` (if enabled)."""
    g = rt.settings.gateway
    registry = rt.metrics.registry
    rt.killswitches = await KillSwitches.start(
        rt.db,
        rt.bus,
        rt.audit,
        settings=g.quota.killswitch,
        operator_tenant=rt.settings.default_tenant,
        catalog=catalog_from(
            (name, [d.name for d in m.deployments]) for name, m in g.models.items()
        ),
        registry=registry,
    )
    if g.quota.enabled:
        rt.quota = await QuotaService.start(g.quota, db=rt.db, registry=registry)
    if g.quota.usage.enabled:
        rt.usage = UsageRecorder.start(rt.db, g.quota.usage, registry=registry)
