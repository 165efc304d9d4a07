"""Verification of the audit trail: hash chain, indexed columns, signed checkpoints.

Streams rows in (tenant, seq) order and stops at the first problem, which it names.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select

from opsgate.audit.chain import GENESIS, iso
from opsgate.audit.merkle import Frontier, leaf_hash
from opsgate.audit.models import AuditCheckpoint, AuditEvent
from opsgate.audit.signing import checkpoint_message, verify_signature
from opsgate.db.engine import Database

_COLUMNS = ("seq", "id", "actor", "action", "resource", "outcome")


@dataclass
class Problem:
    tenant: str
    seq: int
    event_id: str | None
    problem: str


@dataclass
class Report:
    events: int = 0
    checkpoints: int = 0
    tenants: dict[str, int] = field(default_factory=dict)
    first_problem: Problem | None = None
    # Checkpoint roots seen, by (tenant, size): for checking an external copy.
    roots: dict[tuple[str, int], str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.first_problem is None

    def as_dict(self) -> dict[str, Any]:
        p = self.first_problem
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "tenants": self.tenants,
            "first_problem": None if p is None else p.__dict__,
        }


async def _rows(db: Database, tenant: str) -> AsyncIterator[Any]:
    q = (
        select(
            AuditEvent.seq,
            AuditEvent.id,
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.resource,
            AuditEvent.outcome,
            AuditEvent.data,
            AuditEvent.hash,
        )
        .where(AuditEvent.tenant_id == tenant)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=5000)
    )
    async with db.session(tenant) as s:
        result = await s.stream(q)
        async for part in result.partitions():
            for row in part:
                yield row


async def verify_tenant(
    db: Database,
    tenant: str,
    public_keys: dict[str, str],
    report: Report,
    want_roots: frozenset[int] = frozenset(),
) -> None:
    async with db.session(tenant) as s:
        cks = list(
            (
                await s.execute(
                    select(AuditCheckpoint)
                    .where(AuditCheckpoint.tenant_id == tenant)
                    .order_by(AuditCheckpoint.size)
                )
            ).scalars()
        )
    by_size = {c.size: c for c in cks}
    frontier = Frontier()
    prev = GENESIS
    expected = 1
    count = 0

    def fail(seq: int, eid: str | None, what: str) -> None:
        report.first_problem = Problem(tenant, seq, eid, what)

    async for seq, eid, actor, action, resource, outcome, data, digest in _rows(db, tenant):
        if seq != expected:
            return fail(
                expected,
                None,
                f"sequence gap (an event was deleted or inserted): expected seq {expected}, "
                f"found {seq}",
            )
        # A tampered row may not even have the stored types any more (e.g. SQLite turning a
        # blob into text): coerce, and let the hash comparison judge.
        data = data.encode() if isinstance(data, str) else bytes(data or b"")
        digest = digest.encode() if isinstance(digest, str) else bytes(digest or b"")
        if hashlib.sha256(prev + data).digest() != digest:
            return fail(seq, eid, "hash mismatch: event modified, inserted or reordered")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return fail(seq, eid, "event data is not valid JSON")
        if (doc.get("tenant"), doc.get("seq"), doc.get("id"), doc.get("actor"),
                doc.get("action"), doc.get("resource"), doc.get("outcome")) != (
                tenant, seq, eid, actor, action, resource, outcome):  # fmt: skip
            return fail(seq, eid, "indexed columns differ from the hashed event")
        frontier.append(leaf_hash(data))
        prev = digest
        count += 1
        expected += 1
        if seq in want_roots:
            report.roots[(tenant, seq)] = frontier.root().hex()
        ck = by_size.get(seq)
        if ck is not None:
            problem = _check_checkpoint(tenant, ck, frontier, prev, public_keys)
            if problem:
                return fail(seq, eid, problem)
            report.checkpoints += 1
    if cks and cks[-1].size > count:
        return fail(count + 1, None, f"log truncated: checkpoint covers {cks[-1].size} events")
    report.events += count
    report.tenants[tenant] = count


def _check_checkpoint(
    tenant: str, ck: AuditCheckpoint, frontier: Frontier, last: bytes, keys: dict[str, str]
) -> str | None:
    if frontier.root().hex() != ck.root or last.hex() != ck.last_hash:
        return f"checkpoint at {ck.size} does not match the events"
    pub = keys.get(ck.key_id)
    if pub is None:
        return f"checkpoint at {ck.size} signed by unknown key {ck.key_id}"
    msg = checkpoint_message(tenant, ck.size, ck.root, ck.last_hash, iso(ck.ts))
    if not verify_signature(pub, msg, ck.signature):
        return f"checkpoint at {ck.size} has an invalid signature"
    return None


async def verify(
    db: Database,
    tenants: list[str],
    public_keys: dict[str, str],
    external: list[dict[str, Any]] | None = None,
) -> Report:
    """Verify `tenants`' chains; `external` is an exported list of checkpoints to hold the
    database to (detects a rewritten or truncated tail that was re-chained)."""
    report = Report()
    for tenant in tenants:
        want = frozenset(int(c.get("size", 0)) for c in external or [] if c.get("tenant") == tenant)
        await verify_tenant(db, tenant, public_keys, report, want)
        if report.first_problem:
            return report
    for ck in external or []:
        key = (str(ck.get("tenant")), int(ck.get("size", 0)))
        if key[0] not in tenants:
            continue
        if report.tenants.get(key[0], 0) < key[1]:
            report.first_problem = Problem(
                key[0], key[1], None, "log truncated below an exported checkpoint"
            )
            return report
        if report.roots.get(key) != ck.get("root"):
            report.first_problem = Problem(
                key[0], key[1], None, "exported checkpoint does not match the log"
            )
            return report
    return report
