"""A verification worker process: checks whole seq ranges of one tenant's chain.

Run as `python -m opsgate.audit.verify_worker` by `verify_parallel`. The per-row checks are
pure Python and hold the GIL, so threads cannot share them out; separate processes can. The
worker is started directly (not through multiprocessing), so it imports only this module and
the row checks, never the CLI or the app that started it.

Protocol (stdin/stdout, one worker per pipe pair):
  line 1:       JSON {"tenant": t, "sqlite": path} or {"tenant": t, "dsn": postgres-dsn}
  each job:     JSON line {"after": a, "upto": u, "marks": [size, ...]}
  each answer:  4-byte big-endian header length, JSON header, then n * 32 bytes of leaf hashes
Header: n (good rows), start (stored hash of row `after`, hex), last (digest of the last good
row, hex), expected (seq the next row must have), problem (bool), marks ({size: digest hex} for
the requested sizes inside the good rows), error (a one-line reason if the range could not be
read). A range with a problem is re-checked sequentially by the caller, which names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import IO, Any

import orjson

from opsgate.audit.verify_rows import GENESIS, SQL, as_bytes, check_rows

BATCH = 20_000
# Small enough (~2.5 MB of rows) for the server to have the next batch on the way while this
# one is checked.
PG_BATCH = 4_000
_START_SQL = "select hash from audit_events where tenant_id = {t} and seq = {seq}"
Fetch = Callable[[int, int], Awaitable[list[Any]]]  # rows (after, upto], at most one batch
Stored = Callable[[int], Awaitable[Any]]  # the stored hash of one row, or None


def frame(header: dict[str, Any], leaves: bytes = b"") -> bytes:
    head = orjson.dumps(header)
    return len(head).to_bytes(4, "big") + head + leaves


async def check_range(
    fetch: Fetch, start_prev: bytes, tenant: str, job: dict[str, Any], batch: int = BATCH
) -> bytes:
    """One job: rows (after, upto] in batches, checked against the stored hash of `after`.

    The next batch is requested before this one is checked, so on PostgreSQL the server
    produces it (into the socket buffer) while this process hashes."""
    after, upto = int(job["after"]), int(job["upto"])
    marks = {int(m) for m in job.get("marks", ())}
    prev, expected = start_prev, after + 1
    leaves: list[bytes] = []
    at_marks: dict[str, str] = {}
    problem = False
    pending: asyncio.Future[list[Any]] | None = asyncio.ensure_future(fetch(after, upto))
    while pending is not None:
        rows = await pending
        pending = None
        if not rows:
            break
        if len(rows) == batch:
            pending = asyncio.ensure_future(fetch(rows[-1][0], upto))
            await asyncio.sleep(0)  # let it send the query before this batch is hashed
        c = check_rows(rows, tenant, prev, expected)
        base = expected
        for m in marks:
            if base <= m < c.expected:
                at_marks[str(m)] = c.digests[m - base].hex()
        leaves += c.leaves
        prev, expected = c.last, c.expected
        if c.problem:
            problem = True
            break
    if pending is not None:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
    header = {
        "n": len(leaves),
        "start": start_prev.hex(),
        "last": prev.hex(),
        "expected": expected,
        "problem": problem,
        "marks": at_marks,
    }
    return frame(header, b"".join(leaves))


async def _serve(
    fetch: Fetch, stored: Stored, tenant: str, batch: int, stdin: IO[bytes], out: IO[bytes]
) -> None:
    """Answer jobs until the caller closes stdin; `stored(seq)` is the stored hash of a row."""
    while line := stdin.readline().strip():
        job = orjson.loads(line)
        after = int(job["after"])
        start = GENESIS
        if after:
            # A missing row `after` gets a digest no row can chain to: the range then reports
            # a problem and the caller re-checks it sequentially, which names the gap.
            found = await stored(after)
            start = as_bytes(found) if found is not None else b"\xff" * 32
        out.write(await check_range(fetch, start, tenant, job, batch))
        out.flush()


async def _serve_sqlite(path: str, tenant: str, stdin: IO[bytes], out: IO[bytes]) -> None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sql = SQL.format(t="?", after="?", upto="?", limit=BATCH)
    start_sql = _START_SQL.format(t="?", seq="?")

    async def fetch(after: int, upto: int) -> list[Any]:
        return con.execute(sql, (tenant, after, upto)).fetchall()

    async def stored(seq: int) -> Any:
        row = con.execute(start_sql, (tenant, seq)).fetchone()
        return row[0] if row else None

    try:
        await _serve(fetch, stored, tenant, BATCH, stdin, out)
    finally:
        con.close()


async def _serve_pg(dsn: str, tenant: str, stdin: IO[bytes], out: IO[bytes]) -> None:
    import asyncpg  # type: ignore[import-untyped]  # only PostgreSQL workers need it

    conn = await asyncpg.connect(dsn)
    sql = SQL.format(t="$1", after="$2", upto="$3", limit=PG_BATCH)
    start_sql = _START_SQL.format(t="$1", seq="$2")

    async def fetch(after: int, upto: int) -> list[Any]:
        return list(await conn.fetch(sql, tenant, after, upto))

    async def stored(seq: int) -> Any:
        return await conn.fetchval(start_sql, tenant, seq)

    try:
        # The app role sees a tenant's rows only with this setting (row-level security).
        await conn.execute("select set_config('app.tenant_id', $1, false)", tenant)
        await _serve(fetch, stored, tenant, PG_BATCH, stdin, out)
    finally:
        await conn.close()


def main() -> None:
    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    try:
        hello = orjson.loads(stdin.readline())
        tenant = str(hello["tenant"])
        if "sqlite" in hello:
            asyncio.run(_serve_sqlite(str(hello["sqlite"]), tenant, stdin, out))
        else:
            asyncio.run(_serve_pg(str(hello["dsn"]), tenant, stdin, out))
    except (BrokenPipeError, KeyboardInterrupt):
        return
    except Exception as exc:  # reported to the caller, which falls back to sequential
        # The type only: a driver message could quote the connection string.
        out.write(frame({"error": type(exc).__name__}))
        out.flush()


if __name__ == "__main__":
    main()
