"""Audit append and verify throughput on SQLite and PostgreSQL.

Baseline, same run: the same rows inserted without hashing or chaining (the cost of the
chain is the difference). Usage: python -m bench audit [--events N] [--quick] [--no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import insert

from opsgate.audit import verify_parallel
from opsgate.audit.chain import utcnow
from opsgate.audit.models import AuditEvent
from opsgate.audit.schemas import AuditEventIn
from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer
from opsgate.audit.verify import verify
from opsgate.db import migrate
from opsgate.db.engine import Database
from opsgate.settings import load_settings


def _event(i: int) -> AuditEventIn:
    return AuditEventIn(
        tenant="default",
        actor=f"key:abcdefghijk{i % 10}",
        action="model.invoke",
        resource="model:ops-default",
        outcome="allowed",
        reason="policy: allow (group sg-ops)",
        payload={"tokens_in": 120 + i % 50, "tokens_out": 40, "route": "ops-default->local"},
        trace_id=uuid.uuid4().hex,
    )


async def _baseline(db: Database, n: int) -> float:
    """Plain batched inserts of equivalent rows: no canonical JSON, no hashes."""
    blob = b'{"v":1,"payload":{"tokens_in":120}}' * 4
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        rows = [
            {
                "tenant_id": "default",
                "seq": 10_000_000 + start + j,
                "id": str(uuid.uuid4()),
                "ts": utcnow(),
                "actor": "a",
                "action": "bench.baseline",
                "resource": "r",
                "outcome": "info",
                "trace_id": None,
                "data": blob,
                "hash": b"\x00" * 32,
            }
            for j in range(min(1000, n - start))
        ]
        async with db.session("default") as s:
            await s.execute(insert(AuditEvent), rows)
    return n / (time.perf_counter() - t0)


async def _append(db: Database, signer: Signer, n: int) -> float:
    log = AuditLog(db, AuditSettings(checkpoint_every=1000, batch_max=1000), signer)
    await log.start()
    events = [_event(i) for i in range(n)]
    t0 = time.perf_counter()
    for ev in events:
        await log.emit(ev)
    await log.flush()
    rate = n / (time.perf_counter() - t0)
    await log.close()
    return rate


async def _verify(db: Database, signer: Signer, workers: int | None) -> tuple[float, int]:
    """`opsgate audit verify`'s path; workers=1 is the single-process baseline."""
    t0 = time.perf_counter()
    report = await verify(db, ["default"], {signer.key_id: signer.public_hex()}, workers=workers)
    dt = time.perf_counter() - t0
    assert report.ok, report.first_problem
    return report.events / dt, report.events


async def run_backend(
    name: str, url: str, admin_url: str, data_dir: Path, n: int
) -> dict[str, float]:
    s = load_settings(
        None,
        data_dir=data_dir,
        database={"url": url, "admin_url": admin_url, "app_role": "opsgate_bench"},
    )
    await migrate.upgrade(s.database_admin_url, "opsgate_bench" if "postgresql" in url else None)
    db = Database(s.database_url)
    await db.ensure_tenant("default")
    signer = Signer.from_data_dir(data_dir)
    append = await _append(db, signer, n)
    # Alternating pairs (one process first), medians: the first pass reads a cold log.
    pairs = [(await _verify(db, signer, 1), await _verify(db, signer, None)) for _ in range(3)]
    ver1 = statistics.median(p[0][0] for p in pairs)
    ver = statistics.median(p[1][0] for p in pairs)
    events = pairs[0][1][1]
    base = await _baseline(db, n)
    await db.dispose()
    print(
        f"{name:10} append {append:>9,.0f} ev/s   baseline insert {base:>9,.0f} rows/s "
        f"(chain cost x{base / append:.2f})   verify {ver:>9,.0f} ev/s over {events:,} "
        f"({verify_parallel.worker_count()} workers; one process {ver1:,.0f} ev/s)"
    )
    return {"append": append, "baseline": base, "verify": ver, "verify_one_process": ver1}


async def _pg_db() -> tuple[str, str] | None:
    try:
        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    except OSError:
        return None
    name = f"opsgate_bench_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1/{name}"


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def amain(n: int, pg: bool) -> dict[str, dict[str, float]]:
    out = {}
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite+aiosqlite:///{d}/opsgate.db"
        out["sqlite"] = await run_backend("sqlite", url, url, Path(d), n)
    if pg:
        made = await _pg_db()
        if made is None:
            print("postgresql unreachable: skipped")
        else:
            name, admin = made
            try:
                app = admin.replace("postgres@", "opsgate_bench@")
                with tempfile.TemporaryDirectory() as d:
                    out["postgresql"] = await run_backend("postgresql", app, admin, Path(d), n)
            finally:
                await _drop(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-pg", action="store_true")
    a = ap.parse_args()
    asyncio.run(amain(2000 if a.quick else a.events, not a.no_pg))


if __name__ == "__main__":
    main()
