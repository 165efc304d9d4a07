"""Export sinks fed after each commit: JSON lines (file or stdout) and a signed webhook.

Sinks are copies for a SIEM; the database is the record. A sink that falls behind or fails
loses its copy of events (counted and logged), never the database's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import random
import sys
from pathlib import Path
from typing import Protocol

import httpx
import orjson

from opsgate.audit.settings import AuditSinkSettings
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.audit.sinks")


def export_line(data: bytes, digest: bytes, prev: bytes) -> bytes:
    doc = orjson.loads(data)
    doc["hash"] = digest.hex()
    doc["prev_hash"] = prev.hex()
    return orjson.dumps(doc)


class AuditSink(Protocol):
    name: str

    async def start(self) -> None: ...

    def offer(self, lines: list[bytes]) -> None: ...

    async def close(self) -> None: ...


class _QueuedSink:
    """Owns a bounded queue and a task that drains it in batches."""

    name = "sink"

    def __init__(self, queue_max: int = 10_000) -> None:
        self.queue: asyncio.Queue[list[bytes]] = asyncio.Queue(queue_max)
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def offer(self, lines: list[bytes]) -> None:
        try:
            self.queue.put_nowait(lines)
        except asyncio.QueueFull:
            self.dropped += len(lines)
            log.warning("audit sink behind; events not exported", sink=self.name, n=len(lines))

    async def _run(self) -> None:
        while True:
            batch = await self.queue.get()
            taken = 1
            while not self.queue.empty() and len(batch) < 5000:
                batch.extend(self.queue.get_nowait())
                taken += 1
            try:
                await self.deliver(batch)
            except Exception as exc:
                log.error("audit sink failed", sink=self.name, error=type(exc).__name__)
            for _ in range(taken):
                self.queue.task_done()

    async def deliver(self, lines: list[bytes]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        # Deliver what is queued (bounded by a timeout), then stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class JsonlSink(_QueuedSink):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.name = f"jsonl:{target}"
        self.target = target

    async def deliver(self, lines: list[bytes]) -> None:
        blob = b"".join(line + b"\n" for line in lines)
        if self.target == "-":
            sys.stdout.buffer.write(blob)
            sys.stdout.buffer.flush()
            return
        await asyncio.to_thread(self._append, blob)

    def _append(self, blob: bytes) -> None:
        with Path(self.target).open("ab") as fh:
            fh.write(blob)


class WebhookSink(_QueuedSink):
    """POSTs a JSON array per batch with `X-OpsGate-Signature: sha256=<hmac of body>`."""

    def __init__(self, cfg: AuditSinkSettings, secret: bytes, client: httpx.AsyncClient) -> None:
        super().__init__()
        self.name = f"webhook:{cfg.target}"
        self.cfg = cfg
        self.secret = secret
        self.client = client
        self.failures = 0

    async def deliver(self, lines: list[bytes]) -> None:
        body = b"[" + b",".join(lines) + b"]"
        sig = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        headers = {"content-type": "application/json", "x-opsgate-signature": f"sha256={sig}"}
        for attempt in range(4):
            try:
                r = await self.client.post(
                    self.cfg.target, content=body, headers=headers, timeout=self.cfg.timeout_seconds
                )
                if r.status_code < 500 and r.status_code != 429:
                    if r.status_code >= 400:
                        log.warning("audit webhook refused batch", status=r.status_code)
                        self.failures += 1
                    return
            except httpx.HTTPError as exc:
                log.warning("audit webhook failed", error=type(exc).__name__, attempt=attempt)
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt) * (0.5 + random.random()))
        self.failures += 1
        self.dropped += len(lines)
