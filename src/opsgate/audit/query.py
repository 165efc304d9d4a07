"""Reading the audit trail: filtered, cursor-paginated listing and Merkle proofs."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, select

from opsgate.audit.merkle import inclusion_proof, leaf_hash, root_of
from opsgate.audit.models import AuditCheckpoint, AuditEvent
from opsgate.db.engine import Database
from opsgate.errors import BadRequest, NotFound


@dataclass
class EventFilter:
    action: str | None = None
    action_prefix: str | None = None
    actor: str | None = None
    resource: str | None = None
    outcome: str | None = None
    trace_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "s":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid cursor", param="cursor") from None


_Rows = Select[int, bytes, bytes]


def _filtered(q: _Rows, f: EventFilter) -> _Rows:
    if f.action:
        q = q.where(AuditEvent.action == f.action)
    if f.action_prefix:
        q = q.where(AuditEvent.action.startswith(f.action_prefix, autoescape=True))
    if f.actor:
        q = q.where(AuditEvent.actor == f.actor)
    if f.resource:
        q = q.where(AuditEvent.resource == f.resource)
    if f.outcome:
        q = q.where(AuditEvent.outcome == f.outcome)
    if f.trace_id:
        q = q.where(AuditEvent.trace_id == f.trace_id)
    if f.since:
        q = q.where(AuditEvent.ts >= f.since)
    if f.until:
        q = q.where(AuditEvent.ts < f.until)
    return q


async def list_events(
    db: Database, tenant: str, f: EventFilter, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; the cursor continues below the last seq returned."""
    q: _Rows = select(AuditEvent.seq, AuditEvent.data, AuditEvent.hash).where(
        AuditEvent.tenant_id == tenant
    )
    q = _filtered(q, f)
    if cursor:
        q = q.where(AuditEvent.seq < decode_cursor(cursor))
    q = q.order_by(AuditEvent.seq.desc()).limit(limit + 1)
    async with db.session(tenant) as s:
        rows = (await s.execute(q)).all()
    items = []
    for _seq, data, digest in rows[:limit]:
        doc = orjson.loads(data)
        doc["hash"] = digest.hex()
        items.append(doc)
    nxt = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
    return items, nxt


async def proof(db: Database, tenant: str, seq: int) -> dict[str, Any]:
    """Inclusion proof of event `seq` in the tree at the latest checkpoint covering it."""
    async with db.session(tenant) as s:
        ck = (
            await s.execute(
                select(AuditCheckpoint)
                .where(AuditCheckpoint.tenant_id == tenant, AuditCheckpoint.size >= seq)
                .order_by(AuditCheckpoint.size.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if ck is None or seq < 1:
            raise NotFound("no checkpoint covers this event yet")
        rows = await s.execute(
            select(AuditEvent.data)
            .where(AuditEvent.tenant_id == tenant, AuditEvent.seq <= ck.size)
            .order_by(AuditEvent.seq)
        )
        leaves = [leaf_hash(d) for (d,) in rows]
    if len(leaves) != ck.size or root_of(leaves) != bytes.fromhex(ck.root):
        raise NotFound("log does not match its checkpoint; run audit verify")
    return {
        "seq": seq,
        "leaf_index": seq - 1,
        "tree_size": ck.size,
        "root": ck.root,
        "leaf_hash": leaves[seq - 1].hex(),
        "path": [h.hex() for h in inclusion_proof(leaves, seq - 1)],
        "checkpoint_signature": ck.signature,
        "key_id": ck.key_id,
    }


async def checkpoints(db: Database, tenant: str) -> list[dict[str, Any]]:
    async with db.session(tenant) as s:
        rows = (
            await s.execute(
                select(AuditCheckpoint)
                .where(AuditCheckpoint.tenant_id == tenant)
                .order_by(AuditCheckpoint.size)
            )
        ).scalars()
        from opsgate.audit.chain import iso

        return [
            {
                "tenant": c.tenant_id,
                "size": c.size,
                "root": c.root,
                "last_hash": c.last_hash,
                "ts": iso(c.ts),
                "key_id": c.key_id,
                "signature": c.signature,
            }
            for c in rows
        ]
