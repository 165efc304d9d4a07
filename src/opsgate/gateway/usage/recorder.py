"""`UsageRecorder`: queue usage records on the request path, insert them in batches.

`record` never blocks and never raises: a full queue drops the record (counted in
`opsgate_usage_records_total{result="dropped"}` and logged), because accounting must not
slow down or fail a model request. A writer task inserts batches, one transaction per
tenant, retrying a failed batch a few times before dropping it.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Table, insert

from opsgate.db.engine import Database
from opsgate.db.sqlite_writer import (
    SqliteBatchWriter,
    bind_processor,
    database_file,
    qmark_insert,
)
from opsgate.gateway.usage.models import UsageRow
from opsgate.gateway.usage.settings import UsageSettings
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.usage")

_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ROUTE_UNSAFE = re.compile(r"[^A-Za-z0-9._:;,=>/@ -]")
MAX_GROUPS = 64
RETRY_DELAYS = (0.1, 0.5, 2.0)
CLOSE_SECONDS = 10.0
# Core executemany on the table: the ORM bulk-insert path cost the event loop ~2x as much
# per row, for nothing (rows are plain dicts, each with its tenant set).
_ROWS = cast("Table", UsageRow.__table__)
_COLUMNS = [c.name for c in _ROWS.columns]
_SQLITE_INSERT = qmark_insert(_ROWS, _COLUMNS)


@dataclass(slots=True)
class UsageRecord:
    """One model request's accounting facts. No prompt or response text, no credentials."""

    tenant: str
    principal_id: str
    key_id: str | None
    groups: Iterable[str]
    model: str
    deployment: str | None
    route: str
    tokens_in: int
    tokens_out: int
    cost: float
    latency_ms: float
    status: str
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    request_id: str | None = None
    provider: str | None = None
    operation: str = "chat"
    stream: bool = False
    trace_id: str | None = None


def encode_groups(groups: Iterable[str]) -> str:
    """Sorted groups as "|a|b|" (at most 64, "|" escaped), "" when none."""
    names = sorted({g.replace("%", "%25").replace("|", "%7C") for g in groups if g})
    if not names:
        return ""
    return "|" + "|".join(names[:MAX_GROUPS]) + "|"


def decode_groups(text: str) -> list[str]:
    return [g.replace("%7C", "|").replace("%25", "%") for g in text.strip("|").split("|") if g]


def _code(value: str | None, default: str) -> str:
    return value if value and _CODE.match(value) else default


def _amount(value: float) -> float:
    v = float(value)
    return v if math.isfinite(v) and v > 0 else 0.0


def _clip(value: str | None, n: int) -> str | None:
    return value[:n] if value else None


def to_row(rec: UsageRecord) -> dict[str, Any]:
    """The row for `rec`: fields bounded to their columns, codes checked against a pattern."""
    ts = rec.ts.astimezone(UTC) if rec.ts.tzinfo else rec.ts.replace(tzinfo=UTC)
    return {
        "tenant_id": rec.tenant,
        "id": uuid.uuid4().hex,
        "ts": ts,
        "day": ts.strftime("%Y-%m-%d"),
        "request_id": _clip(rec.request_id, 64),
        "trace_id": _clip(rec.trace_id, 32),
        "principal_id": rec.principal_id[:200],
        "key_id": _clip(rec.key_id, 128),
        "groups": encode_groups(rec.groups),
        "model": rec.model[:128],
        "deployment": _clip(rec.deployment, 128),
        "provider": _code(rec.provider, "other") if rec.provider else None,
        "operation": _code(rec.operation, "other")[:16],
        "route": _ROUTE_UNSAFE.sub("?", rec.route)[:500],
        "tokens_in": max(0, int(rec.tokens_in)),
        "tokens_out": max(0, int(rec.tokens_out)),
        "cost": _amount(rec.cost),
        "latency_ms": _amount(rec.latency_ms),
        "status": _code(rec.status, "other"),
        "stream": bool(rec.stream),
    }


class UsageRecorder:
    def __init__(
        self,
        db: Database,
        settings: UsageSettings,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue(settings.queue_max)
        self._task: asyncio.Task[None] | None = None
        self._last_drop_log = 0.0
        # On a SQLite file, batches go through a connection of their own in one thread hop
        # (opsgate.db.sqlite_writer); values converted as SQLAlchemy would for each column.
        path = database_file(db.url) if db.is_sqlite else None
        self._sqlite = SqliteBatchWriter(path, "usage") if path else None
        self._convert = [
            (i, proc)
            for i, c in enumerate(_ROWS.columns)
            if (proc := bind_processor(c, db.engine.dialect)) is not None
        ]
        reg = registry if registry is not None else CollectorRegistry()
        self._count = Counter(
            "opsgate_usage_records_total",
            "Usage records by result (written, dropped)",
            ["result"],
            registry=reg,
        )

    @classmethod
    def start(
        cls, db: Database, settings: UsageSettings, *, registry: CollectorRegistry | None = None
    ) -> UsageRecorder:
        rec = cls(db, settings, registry=registry)
        rec._task = asyncio.create_task(rec._run(), name="usage-writer")
        return rec

    def record(self, rec: UsageRecord) -> None:
        """Queue `rec` for writing; returns at once (drops it when the queue is full)."""
        try:
            self._queue.put_nowait(rec)
        except asyncio.QueueFull:
            self._dropped(1, "queue full")

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def _dropped(self, n: int, why: str) -> None:
        self._count.labels("dropped").inc(n)
        now = time.monotonic()
        if now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.error("usage records dropped", count=n, reason=why)

    async def _run(self) -> None:
        linger = self.settings.batch_linger_ms / 1000
        while True:
            batch = [await self._queue.get()]
            if linger:
                await asyncio.sleep(linger)
            while len(batch) < self.settings.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def write(self, batch: list[UsageRecord]) -> None:
        """Insert `batch`, one transaction per tenant; a tenant's batch that keeps failing
        is dropped (and counted) so it cannot block the others."""
        by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for rec in batch:
            try:
                by_tenant[rec.tenant].append(to_row(rec))
            except (TypeError, ValueError, AttributeError) as exc:
                self._dropped(1, f"invalid record ({type(exc).__name__})")
        for tenant, rows in by_tenant.items():
            await self._write_tenant(tenant, rows)

    async def _write_tenant(self, tenant: str, rows: list[dict[str, Any]]) -> None:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                await asyncio.sleep(delay)
            try:
                if self._sqlite is not None:
                    await self._sqlite.write([(_SQLITE_INSERT, [self._tuple(r) for r in rows])])
                else:
                    async with self.db.session(tenant) as s:
                        await s.execute(insert(_ROWS), rows)
            except Exception as exc:
                log.warning(
                    "usage insert failed", tenant=tenant, attempt=attempt + 1,
                    error=type(exc).__name__,
                )  # fmt: skip
                continue
            self._count.labels("written").inc(len(rows))
            return
        self._dropped(len(rows), "database insert kept failing")

    def _tuple(self, row: dict[str, Any]) -> tuple[Any, ...]:
        values = [row[c] for c in _COLUMNS]
        for i, proc in self._convert:
            values[i] = proc(values[i])
        return tuple(values)

    async def flush(self) -> None:
        """Wait until every record queued so far is written (or dropped)."""
        await self._queue.join()

    def ready(self) -> str:
        if self._task is not None and self._task.done():
            return "writer stopped"
        if self._queue.qsize() > self.settings.queue_max * 0.9:
            return "backlog"
        return "ok"

    async def close(self) -> None:
        """Write the backlog (bounded wait), then stop the writer."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.flush()
        except TimeoutError:
            self._dropped(self._queue.qsize(), "shutdown before the backlog was written")
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._sqlite is not None:
            await self._sqlite.close()
