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
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from opsgate.audit.chain import GENESIS, Chain, encode, iso, load_chain, tail, utcnow
from opsgate.audit.models import AuditCheckpoint, AuditEvent
from opsgate.audit.schemas import AuditEventIn
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer, checkpoint_message
from opsgate.audit.sinks import AuditSink, export_line
from opsgate.db.engine import Database
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.audit")


_EVENTS = cast("Table", AuditEvent.__table__)
_YIELD_EVERY = 100  # events encoded between chances for the write in flight to progress


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
        for sink in self.sinks:
            await sink.close()

    # --- writer -------------------------------------------------------------------------

    async def _run(self) -> None:
        # While one batch is being written, the next is encoded: the database works on the
        # insert (on another core, for PostgreSQL) instead of waiting for the encoding.
        inflight: asyncio.Task[bool] | None = None
        ahead: dict[str, Chain] = {}  # chains as the batch in flight leaves them
        try:
            while True:
                try:
                    async with asyncio.timeout(self.settings.checkpoint_seconds):
                        first = await self._queue.get()
                except TimeoutError:
                    if inflight is not None:
                        await inflight
                        inflight = None
                    await self._checkpoint_all()
                    continue
                batch = await self._gather(first)
                prepared = await self._prepare(batch, ahead if inflight else {})
                if inflight is not None and not await inflight:
                    # the batch before could not be written as encoded: encode this one
                    # again on the chains as they now stand
                    prepared = await self._prepare(batch, {})
                ahead = {p.tenant: p.chain for p in prepared if p.chain is not None}
                inflight = asyncio.create_task(self._write(batch, prepared))
        finally:
            if inflight is not None:
                inflight.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await inflight

    async def _gather(self, first: AuditEventIn) -> list[AuditEventIn]:
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_linger_ms / 1000
        while len(batch) < self.settings.batch_max:
            if self._queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, 0.0005))
                if self._queue.empty():
                    continue
            batch.append(self._queue.get_nowait())
        self.m_queue.set(self._queue.qsize())
        return batch

    async def _prepare(self, batch: list[AuditEventIn], ahead: dict[str, Chain]) -> list[_Prepared]:
        """Encode each tenant's events, continuing `ahead` (the chains as the batch being
        written leaves them) or else the committed chains."""
        by_tenant: dict[str, list[AuditEventIn]] = defaultdict(list)
        for ev in batch:
            by_tenant[ev.tenant].append(ev)
        return [
            await self._prepare_tenant(tenant, events, ahead.get(tenant))
            for tenant, events in by_tenant.items()
        ]

    async def _prepare_tenant(
        self, tenant: str, events: list[AuditEventIn], chain: Chain | None
    ) -> _Prepared:
        try:
            if chain is None:
                chain = self._chains.get(tenant)
            if chain is None:
                async with self.db.session(tenant) as s:
                    chain = await load_chain(s, tenant)
            start, start_hash, chain = chain.seq, chain.last_hash, chain.copy()
            now = utcnow()
            ts = iso(now)
            rows = []
            checkpoints = []
            for i, ev in enumerate(events):
                if i and not i % _YIELD_EVERY:
                    await asyncio.sleep(0)  # let the write in flight take its next step
                rows.append(encode(chain, ev, now, ts))
                # Checkpoint exactly every N events, even in the middle of a batch.
                if chain.seq - chain.checkpoint_size >= self.settings.checkpoint_every:
                    checkpoints.append(self._checkpoint(chain))
        except Exception as exc:
            # e.g. the chain could not be loaded: the retry loop of the write handles it
            log.error("audit encode failed; retrying", error=type(exc).__name__)
            return _Prepared(tenant, events)
        return _Prepared(tenant, events, start, start_hash, chain, rows, checkpoints)

    async def _write(self, batch: list[AuditEventIn], prepared: list[_Prepared]) -> bool:
        """Commit a prepared batch, then count it done. False if a tenant's events had to be
        encoded again (another writer moved the chain, or a commit failed)."""
        ok = True
        for p in prepared:
            ok = await self._commit_tenant(p.tenant, p.events, p) and ok
        async with self._progress:
            self._done += len(batch)
            self._progress.notify_all()
        return ok

    async def _commit_tenant(
        self, tenant: str, events: list[AuditEventIn], prepared: _Prepared | None = None
    ) -> bool:
        as_prepared = prepared is not None and prepared.rows is not None
        attempt = 0
        while True:
            try:
                if prepared is None or prepared.rows is None:
                    prepared = await self._prepare_tenant(tenant, events, None)
                await self._commit(prepared)
                return as_prepared and attempt == 0
            except (IntegrityError, _StaleChain):
                # Usually another writer appended to this chain: reload its tail, re-encode.
                self._chains.pop(tenant, None)
                prepared = None
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
            except Exception as exc:
                # Never drop an event: keep retrying with backoff (emit applies back-pressure).
                self.m_errors.inc()
                self._chains.pop(tenant, None)
                prepared = None
                log.error("audit commit failed; retrying", error=type(exc).__name__)
                attempt += 1
                await asyncio.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))

    async def _chain(self, s: AsyncSession, tenant: str) -> Chain:
        chain = self._chains.get(tenant)
        if chain is None or (not self.db.is_sqlite and chain.seq != await tail(s, tenant)):
            chain = await load_chain(s, tenant)
        return chain

    async def _commit(self, p: _Prepared) -> None:
        assert p.rows is not None and p.chain is not None
        async with self.db.session(p.tenant) as s:
            if not self.db.is_sqlite:
                await s.execute(
                    text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                    {"k": f"opsgate.audit.{p.tenant}"},
                )
                # Several replicas may append (serialised by the lock): the chain the rows
                # were encoded on must still be the tail. On SQLite another writer (the CLI)
                # is rare: a stale chain collides on the (tenant, seq) key instead, which
                # saves a query per commit.
                if await tail(s, p.tenant) != p.start:
                    raise _StaleChain
            if self.db.is_sqlite:
                # Core executemany on the table: the ORM's bulk path costs ~10% of the writer.
                await s.execute(insert(_EVENTS), p.rows)
            else:
                await _pg_insert(s, p.rows)
            s.add_all(p.checkpoints)
        self._chains[p.tenant] = p.chain
        if p.checkpoints:
            self._checkpointed_at[p.tenant] = time.monotonic()
        self.m_events.inc(len(p.rows))
        if self.sinks:
            lines = []
            prev = p.start_hash
            for r in p.rows:
                lines.append(export_line(r["data"], r["hash"], prev))
                prev = r["hash"]
            for sink in self.sinks:
                sink.offer(lines)

    def _checkpoint(self, chain: Chain) -> AuditCheckpoint:
        now = utcnow()
        ts = iso(now)
        root = chain.frontier.root().hex()
        last = chain.last_hash.hex()
        msg = checkpoint_message(chain.tenant, chain.seq, root, last, ts)
        chain.checkpoint_size = chain.seq
        return AuditCheckpoint(
            tenant_id=chain.tenant,
            size=chain.seq,
            root=root,
            last_hash=last,
            ts=now,
            key_id=self.signer.key_id,
            signature=self.signer.sign(msg),
            frontier=orjson.dumps(chain.frontier.to_json()).decode(),
        )

    async def _checkpoint_all(self) -> None:
        """Time-based checkpoints: every tenant with events since its last checkpoint."""
        for tenant, chain in list(self._chains.items()):
            if chain.seq <= chain.checkpoint_size:
                continue
            try:
                async with self.db.session(tenant) as s:
                    fresh = (await self._chain(s, tenant)).copy()
                    if fresh.seq > fresh.checkpoint_size:
                        s.add(self._checkpoint(fresh))
                self._chains[tenant] = fresh
            except IntegrityError:
                self._chains.pop(tenant, None)
            except Exception as exc:
                log.error("audit checkpoint failed", error=type(exc).__name__)


class _StaleChain(Exception):
    """Another writer appended to the chain since these events were encoded."""


@dataclass
class _Prepared:
    """One tenant's events of a batch, encoded (rows None: not yet, or it failed)."""

    tenant: str
    events: list[AuditEventIn]
    start: int = 0  # the chain's seq the rows continue
    start_hash: bytes = GENESIS
    chain: Chain | None = None  # the chain after them
    rows: list[dict[str, Any]] | None = None
    checkpoints: list[AuditCheckpoint] = field(default_factory=list)


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
