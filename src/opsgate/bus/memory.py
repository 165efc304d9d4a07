"""In-process event bus (embedded default): fan-out to per-subscriber queues."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.bus")


class MemoryBus:
    def __init__(self, queue_max: int = 10_000) -> None:
        self._subs: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._queue_max = queue_max

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subs.clear()

    async def ping(self) -> None:
        return None

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        for q in list(self._subs.get(topic, ())):
            try:
                q.put_nowait(payload)
            except asyncio.QueueFull:
                # A stuck subscriber must not block publishers; it loses events, loudly.
                log.warning("bus subscriber queue full; event dropped", topic=topic)

    async def subscribe(self, topic: str) -> AsyncIterator[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_max)
        self._subs[topic].add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subs[topic].discard(q)
