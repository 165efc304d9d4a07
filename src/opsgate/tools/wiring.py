"""Builds the tool service from settings and the runtime's other services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsgate.tools.catalog import ZONES_FILE, load_zones
from opsgate.tools.connectors.aws import AwsConnector
from opsgate.tools.connectors.base import Connector
from opsgate.tools.connectors.host import HostConnector
from opsgate.tools.connectors.kubernetes import KubernetesConnector
from opsgate.tools.federation_service import FederationService
from opsgate.tools.netguard import NetGuard
from opsgate.tools.service import ToolService
from opsgate.tools.zone_overrides import ZoneCatalog

if TYPE_CHECKING:
    from opsgate.runtime import Runtime


async def build_tools(rt: Runtime) -> tuple[ToolService, FederationService]:
    settings = rt.settings.tools
    zones = load_zones(ZONES_FILE)

    async def resolve(ref: str) -> str:
        # Upstream credentials are operator configuration: they live in the operator tenant.
        return (await rt.vault.resolve(rt.settings.default_tenant, ref)).reveal()

    federation = FederationService(
        settings.federation,
        zones,
        db=rt.db,
        audit=rt.audit,
        guard=rt.guard,
        resolve_secret=resolve,
        operator_tenant=rt.settings.default_tenant,
        reserved_names=frozenset({"host", "kubernetes", "aws", "approvals"}),
    )
    await federation.start()  # an unreachable upstream is kept as its status, never fatal
    zone_catalog = ZoneCatalog(zones, rt.db, rt.audit, rt.bus)
    await zone_catalog.start()
    connectors: list[Connector] = [
        HostConnector(zones, NetGuard(settings.allow_targets)),
        KubernetesConnector(settings.kubernetes, zones),
        AwsConnector(settings.aws, zones),
        *federation.connectors,
    ]
    tools = ToolService(
        settings,
        zones,
        connectors,
        policy=rt.policy,
        guard=rt.guard,
        approvals=rt.approvals,
        audit=rt.audit,
        bus=rt.bus,
        vault=rt.vault,
        zone_catalog=zone_catalog,
    )
    federation.set_on_change(tools.refresh_tools)
    return tools, federation
