"""The channel seam: one small Protocol, one typed error."""

from __future__ import annotations

from typing import Protocol

from opsgate.approvals.channels.message import ApprovalMessage


class DeliveryError(Exception):
    """A delivery failed. `reason` is safe to log and audit (never a URL, token or body)."""

    def __init__(self, reason: str, *, status: int | None = None, retry: bool = True) -> None:
        self.reason, self.status, self.retry = reason, status, retry
        super().__init__(reason if status is None else f"{reason} (status {status})")


class Channel(Protocol):
    # "slack", "teams:<name>", "webhook:<name>": for logs and the audit trail.
    name: str
    tenant: str
    zones: list[str]

    async def requested(self, message: ApprovalMessage) -> None:
        """Announce a new pending request."""
        ...

    async def settled(self, message: ApprovalMessage) -> None:
        """Show the outcome (a no-op where the channel cannot update or follow up)."""
        ...


def wants(channel: Channel, tenant: str, zone: str) -> bool:
    return channel.tenant == tenant and (not channel.zones or zone in channel.zones)
