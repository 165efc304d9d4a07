"""The event bus seam: publish/subscribe of small JSON domain events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class EventBus(Protocol):
    """Topics are dotted names (e.g. `killswitch.changed`, `apikey.revoked`)."""

    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str) -> AsyncIterator[dict[str, Any]]:
        """Events published on `topic` after the call, in order, until the iterator closes."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...
