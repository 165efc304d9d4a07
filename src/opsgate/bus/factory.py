"""Pick the bus implementation from settings."""

from __future__ import annotations

from opsgate.bus.base import EventBus
from opsgate.bus.memory import MemoryBus
from opsgate.bus.settings import BusSettings


def build_bus(settings: BusSettings) -> EventBus:
    if settings.backend == "redis":
        from opsgate.bus.redis import RedisBus  # redis loads only when configured

        return RedisBus(settings.redis_url, settings.channel_prefix)
    return MemoryBus()
