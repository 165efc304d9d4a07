"""The audit seam every component writes through."""

from __future__ import annotations

from typing import Protocol

from opsgate.audit.schemas import AuditEventIn


class Auditor(Protocol):
    async def emit(self, event: AuditEventIn) -> None:
        """Queue `event` for appending; returns quickly (the writer batches commits)."""
        ...

    async def flush(self) -> None:
        """Wait until every event emitted so far is durably stored."""
        ...


class MemoryAuditor:
    """Keeps events in a list; for unit tests of components that emit events."""

    def __init__(self) -> None:
        self.events: list[AuditEventIn] = []

    async def emit(self, event: AuditEventIn) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None
