"""Verification of the audit trail: hash chain, indexed columns, signed checkpoints.

Streams rows in (tenant, seq) order and stops at the first problem, which it names.
"""

from __future__ import annotations

import asyncio
import sqlite3
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from opsgate.audit import verify_parallel
from opsgate.audit.chain import GENESIS, iso
from opsgate.audit.merkle import Frontier
from opsgate.audit.models import AuditCheckpoint, AuditEvent
from opsgate.audit.signing import checkpoint_message, verify_signature
from opsgate.audit.verify_rows import SQL, Checked, check_rows
from opsgate.db.engine import Database
from opsgate.db.sqlite_writer import database_file

_BATCH = 20_000
_MAX_SEQ = 2**62
# Chains shorter than two segments are checked in this process: starting workers (~50 ms)
# would cost more than it saves.
SEGMENT = 12_500

__all__ = ["Problem", "Report", "verify", "verify_tenant"]


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
    # Events whose rows were checked by worker processes (the rest by this one).
    in_workers: int = 0

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


class _ChainCheck:
    """Feeds checked rows in seq order into the Merkle frontier; stops at the first problem."""

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
        # sizes where the frontier must be looked at (checkpoints, exported roots)
        self.marks = sorted(set(checkpoints) | set(want_roots))

    def fail(self, seq: int, eid: str | None, what: str) -> bool:
        self.report.first_problem = Problem(self.tenant, seq, eid, what)
        return False

    def feed(self, rows: list[Any]) -> bool:
        return self.take(check_rows(rows, self.tenant, self.prev, self.expected))

    def take(self, c: Checked) -> bool:
        """Append a checked range's leaves; look at checkpoints inside it."""
        frontier = self.frontier
        start = frontier.size
        leaves = c.leaves
        i = 0
        marks = self.marks
        for mark in marks[bisect_right(marks, start) : bisect_right(marks, start + len(leaves))]:
            frontier.extend(leaves[i : mark - start])
            i = mark - start
            if not self._at_mark(mark, c.digests[mark - start - 1]):
                return False
        frontier.extend(leaves[i:])
        self.prev, self.expected = c.last, c.expected
        if c.problem:
            return self.fail(c.bad_seq or c.expected, c.bad_id, c.problem)
        return True

    def _at_mark(self, size: int, last: bytes) -> bool:
        if size in self.want:
            self.report.roots[(self.tenant, size)] = self.frontier.root().hex()
        ck = self.cks.get(size)
        if ck is None:
            return True
        problem = _check_checkpoint(self.tenant, ck, self.frontier, last, self.keys)
        if problem:
            return self.fail(size, None, problem)
        self.report.checkpoints += 1
        return True


async def _scan(db: Database, tenant: str, check: _ChainCheck, upto: int = _MAX_SEQ) -> None:
    """Stream the chain from where `check` stands (all of it; what a parallel pass left: the
    rest after a problem, or rows appended meanwhile) with the raw driver (SQLAlchemy's row
    layer halves the speed)."""
    if check.report.first_problem is not None:
        return
    if db.is_sqlite:
        path = db.engine.url.database or ""
        await asyncio.to_thread(_sqlite_scan_from, path, tenant, check, upto)
        return
    async with db.session(tenant) as s:
        raw = await (await s.connection()).get_raw_connection()
        pg = raw.driver_connection
        assert pg is not None
        sql = SQL.format(t="$1", after="$2", upto="$3", limit=_BATCH)
        after = check.expected - 1
        while True:
            rows = await pg.fetch(sql, tenant, after, upto)
            if not rows or not check.feed(rows):
                return
            after = rows[-1][0]


def _sqlite_scan_from(path: str, tenant: str, check: _ChainCheck, upto: int) -> None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        after = check.expected - 1
        while True:
            rows = con.execute(
                SQL.format(t="?", after="?", upto="?", limit=_BATCH), (tenant, after, upto)
            ).fetchall()
            if not rows or not check.feed(rows):
                return
            after = rows[-1][0]
    finally:
        con.close()


def _worker_source(db: Database, tenant: str) -> dict[str, str] | None:
    """Where a worker process reads the chain from; None for an in-memory database."""
    if db.is_sqlite:
        path = database_file(db.url)
        return None if path is None else {"tenant": tenant, "sqlite": path}
    dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return {"tenant": tenant, "dsn": dsn}


async def verify_tenant(
    db: Database,
    tenant: str,
    public_keys: dict[str, str],
    report: Report,
    want_roots: frozenset[int] = frozenset(),
    *,
    workers: int | None = None,
    segment: int = SEGMENT,
) -> None:
    async with db.session(tenant) as s:
        # Rows, not max(seq): a tampered seq far out must not plan billions of segments.
        rows = (
            await s.execute(select(func.count()).where(AuditEvent.tenant_id == tenant))
        ).scalar() or 0
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
    n = verify_parallel.worker_count() if workers is None else workers
    source = _worker_source(db, tenant)
    if n > 1 and source is not None and rows >= 2 * segment:
        report.in_workers += await verify_parallel.scan(
            check, source, rows, n, segment, lambda upto: _scan(db, tenant, check, upto)
        )
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
    *,
    workers: int | None = None,
    segment: int = SEGMENT,
) -> Report:
    """Verify `tenants`' chains; `external` is an exported list of checkpoints to hold the
    database to (detects a rewritten or truncated tail that was re-chained). Chains of at
    least two segments are checked by `workers` processes (default: one per core, up to 4;
    1 = all in this process)."""
    report = Report()
    for tenant in tenants:
        want = frozenset(int(c.get("size", 0)) for c in external or [] if c.get("tenant") == tenant)
        await verify_tenant(db, tenant, public_keys, report, want, workers=workers, segment=segment)
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
