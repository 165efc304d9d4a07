"""The durable audit log: one writer task per process with group commit.

`emit()` enqueues and returns (awaiting only when the queue is full: back-pressure, never a
drop). The writer takes up to `batch_max` events (waiting `batch_linger_ms` for more), encodes
them into each tenant's hash chain, inserts them in one transaction per tenant and only then
counts them done; `flush()` returns once everything emitted before it is committed. Several
replicas may write the same chain: on PostgreSQL a transaction-scoped advisory lock serialises
a tenant's appends, and everywhere the (tenant, seq) primary key turns a lost race into a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections import defaultdict
from typing import Any, cast

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from opsgate.audit.chain import Chain, encode, iso, load_chain, tail, utcnow
from opsgate.audit.models import AuditCheckpoint, AuditEvent
from opsgate.audit.schemas import AuditEventIn
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer, checkpoint_message
from opsgate.audit.sinks import AuditSink, export_line
from opsgate.db.engine import Database
from opsgate.db.sqlite_writer import (
    SqliteBatchWriter,
    bind_processor,
    database_file,
    qmark_insert,
)
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.audit")


_EVENTS = cast("Table", AuditEvent.__table__)
# The same rows as the ORM writes, for the SQLite writer's own connection (tuples in these
# column orders: see _commit_sqlite).
_SQLITE_EVENTS = qmark_insert(
    _EVENTS,
    ("tenant_id", "seq", "id", "ts", "actor", "action", "resource", "outcome", "trace_id",
     "data", "hash"),
)  # fmt: skip
_SQLITE_CHECKPOINTS = qmark_insert(
    cast("Table", AuditCheckpoint.__table__),
    ("tenant_id", "size", "root", "last_hash", "ts", "key_id", "signature", "frontier"),
)


# One statement per batch: arrays unnested server-side. COPY would be faster still but is
# refused on tables with row-level security; this is an INSERT, so RLS checks still apply.
_PG_INSERT = (
    "insert into audit_events (tenant_id, seq, id, ts, actor, action, resource, outcome, "
    "trace_id, data, hash) select * from unnest($1::varchar[], $2::bigint[], $3::varchar[], "
    "$4::timestamptz[], $5::varchar[], $6::varchar[], $7::varchar[], $8::varchar[], "
    "$9::varchar[], $10::bytea[], $11::bytea[])"
)
_PG_COLUMNS = (
    "tenant_id", "seq", "id", "ts", "actor", "action", "resource", "outcome", "trace_id",
    "data", "hash",
)  # fmt: skip


async def _pg_insert(s: AsyncSession, rows: list[dict[str, Any]]) -> None:
    raw = await (await s.connection()).get_raw_connection()
    pg = raw.driver_connection
    assert pg is not None
    await pg.execute(_PG_INSERT, *([r[c] for r in rows] for c in _PG_COLUMNS))


class AuditLog:
    def __init__(
        self,
        db: Database,
        settings: AuditSettings,
        signer: Signer,
        sinks: list[AuditSink] | None = None,
        registry: CollectorRegistry | None = None,
        fallback_tenant: str = "default",
    ) -> None:
        self.db = db
        self.fallback_tenant = fallback_tenant
        self.settings = settings
        self.signer = signer
        self.sinks = sinks or []
        self._queue: asyncio.Queue[AuditEventIn] = asyncio.Queue(settings.queue_max)
        self._chains: dict[str, Chain] = {}
        self._checkpointed_at: dict[str, float] = {}
        self._enqueued = 0
        self._done = 0
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        path = database_file(db.url) if db.is_sqlite else None
        self._sqlite = SqliteBatchWriter(path, "audit") if path else None
        # Timestamps as SQLAlchemy stores them in SQLite, so the writer's rows read back alike.
        self._sqlite_ts = bind_processor(_EVENTS.c.ts, db.engine.dialect) or (lambda v: v)
        reg = registry or CollectorRegistry()
        self.m_events = Counter("opsgate_audit_events", "Audit events committed", registry=reg)
        self.m_queue = Gauge("opsgate_audit_queue_depth", "Audit events waiting", registry=reg)
        self.m_errors = Counter("opsgate_audit_write_errors", "Failed audit commits", registry=reg)

    async def start(self) -> None:
        for sink in self.sinks:
            await sink.start()
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def emit(self, event: AuditEventIn) -> None:
        await self._queue.put(event)
        self._enqueued += 1

    async def flush(self) -> None:
        target = self._enqueued
        async with self._progress:
            await self._progress.wait_for(lambda: self._done >= target)

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._checkpoint_all()
        if self._sqlite is not None:
            await self._sqlite.close()
        for sink in self.sinks:
            await sink.close()

    # --- writer -------------------------------------------------------------------------

    async def _run(self) -> None:
        linger = self.settings.batch_linger_ms / 1000
        while True:
            try:
                async with asyncio.timeout(self.settings.checkpoint_seconds):
                    first = await self._queue.get()
            except TimeoutError:
                await self._checkpoint_all()
                continue
            batch = [first]
            # One wait for the batch to gather (polling the queue every 0.5 ms woke the loop
            # four times per batch: ~3% of the event loop on a sequential tool-call load).
            if linger > 0 and self._queue.qsize() < self.settings.batch_max - 1:
                await asyncio.sleep(linger)
            while len(batch) < self.settings.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self.m_queue.set(self._queue.qsize())
            await self._commit_with_retry(batch)
            async with self._progress:
                self._done += len(batch)
                self._progress.notify_all()

    async def _commit_with_retry(self, batch: list[AuditEventIn]) -> None:
        by_tenant: dict[str, list[AuditEventIn]] = defaultdict(list)
        for ev in batch:
            by_tenant[ev.tenant].append(ev)
        for tenant, events in by_tenant.items():
            await self._commit_tenant(tenant, events)

    async def _commit_tenant(self, tenant: str, events: list[AuditEventIn]) -> None:
        attempt = 0
        while True:
            try:
                await self._commit(tenant, events)
                return
            except Exception as exc:
                if not _integrity_error(exc):
                    # Never drop an event: keep retrying with backoff (emit applies
                    # back-pressure).
                    self.m_errors.inc()
                    self._chains.pop(tenant, None)
                    log.error("audit commit failed; retrying", error=type(exc).__name__)
                    attempt += 1
                    await asyncio.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))
                    continue
                # Usually another writer appended to this chain: reload its tail, re-encode.
                self._chains.pop(tenant, None)
                attempt += 1
                # An event about a tenant that does not exist (e.g. a token claiming one) is
                # kept in the platform tenant's chain, never dropped.
                if (
                    attempt >= 3
                    and tenant != self.fallback_tenant
                    and not await self.db.tenant_exists(tenant)
                ):
                    events = [_rehome(ev, self.fallback_tenant) for ev in events]
                    tenant = self.fallback_tenant

    async def _chain(self, s: AsyncSession, tenant: str) -> Chain:
        chain = self._chains.get(tenant)
        # On PostgreSQL (several replicas, serialised by the advisory lock) the tail is read
        # so a stale chain reloads without a failed insert. On SQLite another writer (the
        # CLI) is rare: a stale chain collides on the (tenant, seq) key, and the retry
        # reloads it; skipping the read saves a query per commit.
        if chain is None or (not self.db.is_sqlite and chain.seq != await tail(s, tenant)):
            chain = await load_chain(s, tenant)
        return chain

    async def _commit(self, tenant: str, events: list[AuditEventIn]) -> None:
        if self._sqlite is not None:
            await self._commit_sqlite(tenant, events)
            return
        async with self.db.session(tenant) as s:
            if not self.db.is_sqlite:
                await s.execute(
                    text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                    {"k": f"opsgate.audit.{tenant}"},
                )
            chain = (await self._chain(s, tenant)).copy()
            prev = chain.last_hash
            rows, checkpoints = self._encode(chain, events)
            s.add_all(AuditCheckpoint(**ck) for ck in checkpoints)
            if self.db.is_sqlite:  # in memory: no second connection can reach it
                await s.execute(insert(_EVENTS), rows)
            else:
                await _pg_insert(s, rows)
        self._committed(chain, rows, prev, bool(checkpoints))

    async def _commit_sqlite(self, tenant: str, events: list[AuditEventIn]) -> None:
        assert self._sqlite is not None
        chain = self._chains.get(tenant)
        if chain is None:
            async with self.db.session(tenant) as s:
                chain = await load_chain(s, tenant)
        chain = chain.copy()
        prev = chain.last_hash
        rows, checkpoints = self._encode(chain, events)
        stamp = self._sqlite_ts(rows[0]["ts"])
        await self._sqlite.write([
            (_SQLITE_EVENTS, [
                (
                    r["tenant_id"], r["seq"], r["id"], stamp, r["actor"], r["action"],
                    r["resource"], r["outcome"], r["trace_id"], r["data"], r["hash"],
                )
                for r in rows
            ]),
            (_SQLITE_CHECKPOINTS, [
                (
                    ck["tenant_id"], ck["size"], ck["root"], ck["last_hash"],
                    self._sqlite_ts(ck["ts"]), ck["key_id"], ck["signature"], ck["frontier"],
                )
                for ck in checkpoints
            ]),
        ])  # fmt: skip
        self._committed(chain, rows, prev, bool(checkpoints))

    def _encode(
        self, chain: Chain, events: list[AuditEventIn]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Advance `chain` over `events`: the rows, and a checkpoint exactly every N events
        (even in the middle of a batch)."""
        now = utcnow()
        ts = iso(now)
        rows = []
        checkpoints = []
        for ev in events:
            rows.append(encode(chain, ev, now, ts))
            if chain.seq - chain.checkpoint_size >= self.settings.checkpoint_every:
                checkpoints.append(self._checkpoint(chain))
        return rows, checkpoints

    def _committed(
        self, chain: Chain, rows: list[dict[str, Any]], prev: bytes, checkpointed: bool
    ) -> None:
        self._chains[chain.tenant] = chain
        if checkpointed:
            self._checkpointed_at[chain.tenant] = time.monotonic()
        self.m_events.inc(len(rows))
        if self.sinks:
            lines = []
            for r in rows:
                lines.append(export_line(r["data"], r["hash"], prev))
                prev = r["hash"]
            for sink in self.sinks:
                sink.offer(lines)

    def _checkpoint(self, chain: Chain) -> dict[str, Any]:
        """A signed checkpoint of `chain` as it stands (the row's column values)."""
        now = utcnow()
        root = chain.frontier.root().hex()
        last = chain.last_hash.hex()
        msg = checkpoint_message(chain.tenant, chain.seq, root, last, iso(now))
        chain.checkpoint_size = chain.seq
        return {
            "tenant_id": chain.tenant,
            "size": chain.seq,
            "root": root,
            "last_hash": last,
            "ts": now,
            "key_id": self.signer.key_id,
            "signature": self.signer.sign(msg),
            "frontier": orjson.dumps(chain.frontier.to_json()).decode(),
        }

    async def _checkpoint_all(self) -> None:
        """Time-based checkpoints: every tenant with events since its last checkpoint."""
        for tenant, chain in list(self._chains.items()):
            if chain.seq <= chain.checkpoint_size:
                continue
            try:
                async with self.db.session(tenant) as s:
                    fresh = (await self._chain(s, tenant)).copy()
                    if fresh.seq > fresh.checkpoint_size:
                        s.add(AuditCheckpoint(**self._checkpoint(fresh)))
                self._chains[tenant] = fresh
            except IntegrityError:
                self._chains.pop(tenant, None)
            except Exception as exc:
                log.error("audit checkpoint failed", error=type(exc).__name__)


def _integrity_error(exc: BaseException) -> bool:
    """A constraint violation (a lost race on (tenant, seq), or a tenant that does not exist),
    whichever layer raised it: SQLAlchemy, or the driver itself (the inserts run on the raw
    asyncpg/aiosqlite connection, whose errors SQLAlchemy does not wrap). SQLSTATE class 23 is
    "integrity constraint violation"."""
    if isinstance(exc, IntegrityError | sqlite3.IntegrityError):
        return True
    return str(getattr(exc, "sqlstate", "")).startswith("23")


def _rehome(ev: AuditEventIn, tenant: str) -> AuditEventIn:
    payload = dict(ev.payload)
    payload["claimed_tenant"] = ev.tenant
    return AuditEventIn(
        tenant=tenant,
        actor=ev.actor,
        action=ev.action,
        resource=ev.resource,
        outcome=ev.outcome,
        reason=ev.reason,
        payload=payload,
        trace_id=ev.trace_id,
    )
