"""Redis pub/sub event bus, so every replica sees the same domain events."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.bus.redis")


class RedisBus:
    """One pub/sub connection per process, fanned out to local subscribers.

    A reader task owns the subscription and reconnects with backoff when Redis drops; events
    published while it is disconnected are lost (pub/sub is fire-and-forget), so consumers
    that must not miss state (kill switches) also reload periodically.
    """

    def __init__(self, url: str, prefix: str = "opsgate", queue_max: int = 10_000) -> None:
        self.url = url
        self.prefix = prefix
        self.redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._subs: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._queue_max = queue_max
        self._task: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        self._changed = asyncio.Event()
        self.connected = asyncio.Event()

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}.{topic}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._reader(), name="redis-bus")

    async def ping(self) -> None:
        await self.redis.ping()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self.redis.publish(self._channel(topic), orjson.dumps(payload))

    async def subscribe(self, topic: str) -> AsyncIterator[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_max)
        self._subs[topic].add(q)
        # Only the reader task touches the PubSub connection (redis-py's PubSub is not safe
        # to share between coroutines); it picks the new channel up on its next turn.
        self._changed.set()
        try:
            while True:
                yield await q.get()
        finally:
            self._subs[topic].discard(q)

    def _wanted(self) -> set[str]:
        return {self._channel(t) for t, qs in self._subs.items() if qs}

    async def _reader(self) -> None:
        attempt = 0
        while True:
            try:
                self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                subscribed = self._wanted() | {self._channel("_keepalive")}
                await self._pubsub.subscribe(*subscribed)
                self.connected.set()
                attempt = 0
                while True:
                    if self._changed.is_set():
                        self._changed.clear()
                        new = self._wanted() - subscribed
                        if new:
                            await self._pubsub.subscribe(*new)
                            subscribed |= new
                    msg = await self._pubsub.get_message(timeout=0.05)
                    if msg is not None and msg.get("type") == "message":
                        self._dispatch(msg["channel"], msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.connected.clear()
                attempt += 1
                delay = min(5.0, 0.1 * 2**attempt)
                log.warning(
                    "redis bus disconnected; reconnecting", error=type(exc).__name__, in_s=delay
                )
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                await asyncio.sleep(delay)

    def _dispatch(self, channel: bytes | str, data: bytes) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        topic = name[len(self.prefix) + 1 :]
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("bus message is not JSON; dropped", topic=topic)
            return
        for q in list(self._subs.get(topic, ())):
            try:
                q.put_nowait(payload)
            except asyncio.QueueFull:
                log.warning("bus subscriber queue full; event dropped", topic=topic)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self.redis.aclose()
