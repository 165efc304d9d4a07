"""Builds the tool service from settings and the runtime's other services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsgate.tools.catalog import ZONES_FILE, load_zones
from opsgate.tools.connectors.host import HostConnector
from opsgate.tools.netguard import NetGuard
from opsgate.tools.service import ToolService

if TYPE_CHECKING:
    from opsgate.runtime import Runtime


def build_tools(rt: Runtime) -> ToolService:
    zones = load_zones(ZONES_FILE)
    host = HostConnector(zones, NetGuard(rt.settings.tools.allow_targets))
    return ToolService(
        rt.settings.tools,
        zones,
        [host],
        policy=rt.policy,
        guard=rt.guard,
        approvals=rt.approvals,
        audit=rt.audit,
        bus=rt.bus,
        vault=rt.vault,
    )
