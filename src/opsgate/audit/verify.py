"""Verification of the audit trail: hash chain, indexed columns, signed checkpoints.

Streams rows in (tenant, seq) order and stops at the first problem, which it names.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select

from opsgate.audit.chain import GENESIS, iso
from opsgate.audit.merkle import Frontier, leaf_hash
from opsgate.audit.models import AuditCheckpoint
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


_SQL = (
    "select seq, id, actor, action, resource, outcome, data, hash from audit_events "
    "where tenant_id = {t} and seq > {after} order by seq limit {limit}"
)
_BATCH = 20_000


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def columns_match(row: tuple[Any, ...], tenant: str, data: bytes) -> bool:
    """The indexed columns agree with the hashed canonical bytes.

    Canonical JSON sorts keys, so an event always starts `{"action":…,"actor":…,"id":…,
    "outcome":…,"payload":` and its last `,"resource":` (everything after it is scalar) is
    followed by `…,"seq":…,"tenant":…,"trace_id":`. Comparing those byte runs is exact and
    several times cheaper than parsing every event.
    """
    seq, eid, actor, action, resource, outcome = row[:6]
    head = (
        b'{"action":' + _dumps(action) + b',"actor":' + _dumps(actor) + b',"id":'
        + _dumps(eid) + b',"outcome":' + _dumps(outcome) + b',"payload":'
    )  # fmt: skip
    if not data.startswith(head):
        return False
    tail = (
        b',"resource":' + _dumps(resource) + b',"seq":' + str(seq).encode() + b',"tenant":'
        + _dumps(tenant) + b',"trace_id":'
    )  # fmt: skip
    at = data.rfind(b',"resource":')
    return at > 0 and data.startswith(tail, at)


class _ChainCheck:
    """Feeds rows in seq order; stops at the first problem."""

    def __init__(
        self,
        tenant: str,
        checkpoints: dict[int, AuditCheckpoint],
        keys: dict[str, str],
        report: Report,
        want_roots: frozenset[int],
    ) -> None:
        self.tenant, self.cks, self.keys, self.report, self.want = (
            tenant, checkpoints, keys, report, want_roots,
        )  # fmt: skip
        self.frontier = Frontier()
        self.prev = GENESIS
        self.expected = 1

    def fail(self, seq: int, eid: str | None, what: str) -> bool:
        self.report.first_problem = Problem(self.tenant, seq, eid, what)
        return False

    def feed(self, rows: list[Any]) -> bool:
        frontier, prev, expected = self.frontier, self.prev, self.expected
        sha = hashlib.sha256
        for row in rows:
            seq, eid, data, digest = row[0], row[1], row[6], row[7]
            if seq != expected:
                return self.fail(
                    expected, None,
                    f"sequence gap (an event was deleted or inserted): expected seq {expected}, "
                    f"found {seq}",
                )  # fmt: skip
            # A tampered row may not even keep the stored types (SQLite can turn a blob into
            # text): coerce, and let the hash comparison judge.
            if not isinstance(data, bytes):
                data = data.encode() if isinstance(data, str) else bytes(data or b"")
            if not isinstance(digest, bytes):
                digest = digest.encode() if isinstance(digest, str) else bytes(digest or b"")
            if sha(prev + data).digest() != digest:
                return self.fail(seq, eid, "hash mismatch: event modified, inserted or reordered")
            if not columns_match(row, self.tenant, data):
                return self.fail(seq, eid, "indexed columns differ from the hashed event")
            frontier.append(leaf_hash(data))
            prev = digest
            expected += 1
            if seq in self.want:
                self.report.roots[(self.tenant, seq)] = frontier.root().hex()
            ck = self.cks.get(seq)
            if ck is not None:
                problem = _check_checkpoint(self.tenant, ck, frontier, prev, self.keys)
                if problem:
                    return self.fail(seq, eid, problem)
                self.report.checkpoints += 1
        self.prev, self.expected = prev, expected
        return True


def _sqlite_scan(path: str, tenant: str, check: _ChainCheck) -> None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        after = 0
        while True:
            rows = con.execute(
                _SQL.format(t="?", after="?", limit=_BATCH), (tenant, after)
            ).fetchall()
            if not rows or not check.feed(rows):
                return
            after = rows[-1][0]
    finally:
        con.close()


async def _scan(db: Database, tenant: str, check: _ChainCheck) -> None:
    """Stream the chain with the raw driver (SQLAlchemy's row layer halves the speed)."""
    if db.is_sqlite:
        path = db.engine.url.database or ""
        await asyncio.to_thread(_sqlite_scan, path, tenant, check)
        return
    async with db.session(tenant) as s:
        raw = await (await s.connection()).get_raw_connection()
        pg = raw.driver_connection
        assert pg is not None
        sql = _SQL.format(t="$1", after="$2", limit=_BATCH)
        after = 0
        while True:
            rows = await pg.fetch(sql, tenant, after)
            if not rows or not check.feed(rows):
                return
            after = rows[-1][0]


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
    check = _ChainCheck(tenant, {c.size: c for c in cks}, public_keys, report, want_roots)
    await _scan(db, tenant, check)
    if report.first_problem:
        return
    count = check.expected - 1
    if cks and cks[-1].size > count:
        report.first_problem = Problem(
            tenant, count + 1, None, f"log truncated: checkpoint covers {cks[-1].size} events"
        )
        return
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
