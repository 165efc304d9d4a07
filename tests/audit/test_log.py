"""The durable log on SQLite: chaining, checkpoints, tamper detection, durability."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer
from opsgate.audit.verify import verify
from opsgate.cli.main import app as cli
from opsgate.db.base import Base
from opsgate.db.engine import Database
from opsgate.settings import Settings
from tests.audit.conftest import event

runner = CliRunner()


async def _fill(log: AuditLog, n: int, tenant: str = "default") -> None:
    for i in range(n):
        await log.emit(event(i, tenant))
    await log.flush()


def _keys(signer: Signer) -> dict[str, str]:
    return {signer.key_id: signer.public_hex()}


async def test_chain_and_checkpoints(audit_env: tuple[Database, AuditLog, Signer]) -> None:
    db, log, signer = audit_env
    await _fill(log, 35)
    report = await verify(db, ["default"], _keys(signer))
    assert report.ok, report.first_problem
    assert report.events == 35 and report.checkpoints == 3
    async with db.session("default") as s:
        seqs = (await s.execute(text("select seq from audit_events order by seq"))).scalars().all()
    assert seqs == list(range(1, 36))


async def _tamper(db: Database, sql: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(sql))


@pytest.mark.parametrize(
    ("sql", "seq", "what"),
    [
        (
            "update audit_events set data = replace(data, 'ok', 'OK') where seq = 7",
            7,
            "hash mismatch",
        ),
        ("update audit_events set actor = 'someone-else' where seq = 12", 12, "indexed columns"),
        ("delete from audit_events where seq = 5", 5, "sequence gap"),
        ("update audit_events set seq = seq + 100 where seq = 30", 30, "sequence gap"),
        (
            "insert into audit_events select tenant_id, 1000, id, ts, actor, action, resource,"
            " outcome, trace_id, data, hash from audit_events where seq = 40",
            41,
            "sequence gap",
        ),
    ],
)
@pytest.mark.parametrize("workers", [1, 2], ids=["sequential", "parallel"])
async def test_tampering_detected_and_first_bad_event_named(
    audit_env: tuple[Database, AuditLog, Signer], sql: str, seq: int, what: str, workers: int
) -> None:
    db, log, signer = audit_env
    await _fill(log, 40)
    await _tamper(db, sql)
    # segment=8: five segments over two worker processes, checkpoints inside segments
    report = await verify(db, ["default"], _keys(signer), workers=workers, segment=8)
    assert not report.ok
    # parallel: the segments before the bad one came from the workers (but the first, which
    # this process checks itself)
    assert report.in_workers == (0 if workers == 1 else max(0, (seq - 1) // 8 * 8 - 8))
    p = report.first_problem
    assert p is not None and p.seq == seq and what in p.problem, p


async def test_parallel_verification_matches_sequential(
    audit_env: tuple[Database, AuditLog, Signer],
) -> None:
    """Same events, checkpoints and checkpoint roots whichever path checks the chain, with
    segment edges on, before and after checkpoint sizes."""
    from opsgate.audit import query

    db, log, signer = audit_env
    await _fill(log, 95)
    exported = await query.checkpoints(db, "default")
    seq_report = await verify(db, ["default"], _keys(signer), exported, workers=1)
    for segment in (7, 10, 11, 40):
        par = await verify(db, ["default"], _keys(signer), exported, workers=3, segment=segment)
        assert par.ok, par.first_problem
        assert par.as_dict() == seq_report.as_dict()
        assert par.roots == seq_report.roots and len(par.roots) == 9
        assert par.in_workers == 95 - segment and seq_report.in_workers == 0


async def test_failed_worker_falls_back_to_sequential(
    audit_env: tuple[Database, AuditLog, Signer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from structlog.testing import capture_logs

    from opsgate.audit import verify as verify_mod

    db, log, signer = audit_env
    await _fill(log, 30)
    monkeypatch.setattr(
        verify_mod,
        "_worker_source",
        lambda _db, tenant: {"tenant": tenant, "sqlite": "/nonexistent/opsgate.db"},
    )
    with capture_logs() as logs:
        report = await verify(db, ["default"], _keys(signer), workers=2, segment=5)
    assert report.ok and report.events == 30 and report.checkpoints == 3
    assert report.in_workers == 0
    assert {"event": "audit.verify.worker_failed", "error": "OperationalError"}.items() <= logs[
        0
    ].items()
    await _tamper(db, "update audit_events set actor = 'x' where seq = 17")
    report = await verify(db, ["default"], _keys(signer), workers=2, segment=5)
    assert report.first_problem is not None and report.first_problem.seq == 17


async def test_swapped_events_detected(audit_env: tuple[Database, AuditLog, Signer]) -> None:
    db, log, signer = audit_env
    await _fill(log, 20)
    await _tamper(db, "update audit_events set seq = -1 where seq = 3")
    await _tamper(db, "update audit_events set seq = 3 where seq = 4")
    await _tamper(db, "update audit_events set seq = 4 where seq = -1")
    report = await verify(db, ["default"], _keys(signer))
    assert report.first_problem is not None and report.first_problem.seq == 3


async def test_rechained_rewrite_caught_by_signature_and_external_copy(
    audit_env: tuple[Database, AuditLog, Signer], tmp_path: Path
) -> None:
    """An attacker rewrites an event AND recomputes every later hash: the signed checkpoint
    roots no longer match, and neither does an exported copy."""
    import hashlib

    db, log, signer = audit_env
    await _fill(log, 25)
    from opsgate.audit import query

    exported = await query.checkpoints(db, "default")
    async with db.engine.begin() as conn:
        rows = (await conn.execute(text("select seq, data from audit_events order by seq"))).all()
        prev = b"\x00" * 32
        for seq, data in rows:
            if seq == 4:
                data = data.replace(b'"ok"', b'"rewritten"')
            digest = hashlib.sha256(prev + data).digest()
            await conn.execute(
                text("update audit_events set data=:d, hash=:h where seq=:s"),
                {"d": data, "h": digest, "s": seq},
            )
            prev = digest
    report = await verify(db, ["default"], _keys(signer))
    assert report.first_problem is not None
    assert "checkpoint at 10" in report.first_problem.problem
    # and truncation below an exported checkpoint
    await _tamper(db, "delete from audit_events where seq > 15")
    await _tamper(db, "delete from audit_checkpoints where size > 15")
    report = await verify(db, ["default"], _keys(signer), exported)
    assert report.first_problem is not None
    assert (
        "truncated" in report.first_problem.problem or "checkpoint" in report.first_problem.problem
    )


async def test_cli_verify_exit_codes(
    settings: Settings, audit_env: tuple[Database, AuditLog, Signer]
) -> None:
    db, log, _ = audit_env
    await _fill(log, 12)
    d = ["--data-dir", str(settings.data_dir)]
    r = await asyncio.to_thread(runner.invoke, cli, ["audit", "verify", *d])
    assert r.exit_code == 0, r.output
    assert orjson.loads(r.stdout)["ok"] is True
    await _tamper(db, "update audit_events set data = replace(data, 'ok', 'KO') where seq = 2")
    r = await asyncio.to_thread(runner.invoke, cli, ["audit", "verify", *d])
    assert r.exit_code == 1
    assert "seq 2" in r.stderr


async def test_cli_export_and_checkpoints(
    settings: Settings, audit_env: tuple[Database, AuditLog, Signer], tmp_path: Path
) -> None:
    _, log, _ = audit_env
    await _fill(log, 21)
    d = ["--data-dir", str(settings.data_dir)]
    out = tmp_path / "events.jsonl"
    r = await asyncio.to_thread(runner.invoke, cli, ["audit", "export", "-o", str(out), *d])
    assert r.exit_code == 0, r.output
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(lines) == 21 and lines[0]["prev_hash"] == "00" * 32
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    ck = tmp_path / "ck.jsonl"
    r = await asyncio.to_thread(
        runner.invoke, cli, ["audit", "checkpoints", "--export", str(ck), *d]
    )
    assert r.exit_code == 0, r.output
    r = await asyncio.to_thread(
        runner.invoke, cli, ["audit", "verify", "--checkpoints", str(ck), *d]
    )
    assert r.exit_code == 0, r.output


async def test_tenants_have_separate_chains(audit_env: tuple[Database, AuditLog, Signer]) -> None:
    db, log, signer = audit_env
    await db.ensure_tenant("acme")
    await asyncio.gather(_fill(log, 15, "default"), _fill(log, 15, "acme"))
    report = await verify(db, ["default", "acme"], _keys(signer))
    assert report.ok and report.tenants == {"default": 15, "acme": 15}


async def test_backpressure_never_drops(settings: Settings) -> None:
    from tests.conftest import migrated

    await migrated(settings)
    db = Database(settings.database_url)
    signer = Signer.from_data_dir(settings.data_dir)
    log = AuditLog(db, AuditSettings(queue_max=100, batch_max=10, batch_linger_ms=0), signer)
    await log.start()
    try:
        await asyncio.gather(*(log.emit(event(i)) for i in range(1000)))
        await log.flush()
        report = await verify(db, ["default"], _keys(signer))
        assert report.events == 1000
    finally:
        await log.close()
        await db.dispose()


async def test_event_for_unknown_tenant_is_kept(
    audit_env: tuple[Database, AuditLog, Signer],
) -> None:
    db, log, _signer = audit_env
    await log.emit(event(1, "ghost-tenant"))
    await log.flush()
    async with db.session("default") as s:
        data = (await s.execute(text("select data from audit_events"))).scalars().all()
    assert any(b"ghost-tenant" in d for d in data)


async def test_file_databases_commit_on_the_writers_own_connection(
    audit_env: tuple[Database, AuditLog, Signer],
) -> None:
    _db, log, _signer = audit_env
    assert log._sqlite is not None  # the one-hop writer, not the session path


async def test_in_memory_sqlite_keeps_the_session_path(tmp_path: Path) -> None:
    """A second connection to :memory: would open another, empty database: the writer must
    use the application's own session there, checkpoints included."""
    db = Database("sqlite+aiosqlite:///:memory:")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await db.ensure_tenant("default")
    signer = Signer.from_data_dir(tmp_path)
    log = AuditLog(db, AuditSettings(batch_linger_ms=0, checkpoint_every=3), signer)
    assert log._sqlite is None
    await log.start()
    try:
        for i in range(7):
            await log.emit(event(i))
        async with asyncio.timeout(10):
            await log.flush()
    finally:
        await log.close()
    async with db.session("default") as s:
        events = (await s.execute(text("select count(*) from audit_events"))).scalar()
        cks = (await s.execute(text("select count(*) from audit_checkpoints"))).scalar()
    assert (events, cks) == (7, 3)  # every 3 events, plus the one written on close
    await db.dispose()


_CHILD = """
import asyncio, sys
from pathlib import Path
from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer
from opsgate.audit.schemas import AuditEventIn
from opsgate.db.engine import Database
from opsgate.settings import load_settings

async def main():
    s = load_settings(None, data_dir=Path(sys.argv[1]))
    db = Database(s.database_url)
    log = AuditLog(db, AuditSettings(), Signer.from_data_dir(s.data_dir))
    await log.start()
    for i in range(500):
        await log.emit(AuditEventIn("default", "a", "x.y", "r", "info", payload={"i": i}))
    await log.flush()
    print("FLUSHED", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_flushed_events_survive_sigkill(settings: Settings) -> None:
    from tests.conftest import migrated

    await migrated(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGATE_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(settings.data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.strip() == "FLUSHED"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    db = Database(settings.database_url)
    signer = Signer.from_data_dir(settings.data_dir)
    try:
        report = await verify(db, ["default"], _keys(signer))
        assert report.ok and report.events == 500
    finally:
        await db.dispose()


async def test_two_sqlite_writers_share_one_chain(settings: Settings) -> None:
    """E.g. the server and a CLI command: a stale chain collides on (tenant, seq) and reloads."""
    from tests.conftest import migrated

    await migrated(settings)
    signer = Signer.from_data_dir(settings.data_dir)
    dbs = [Database(settings.database_url) for _ in range(2)]
    logs = [
        AuditLog(db, AuditSettings(checkpoint_every=25, batch_linger_ms=0), signer) for db in dbs
    ]
    for log in logs:
        await log.start()
    try:
        for round_ in range(5):
            for k, log in enumerate(logs):
                for i in range(20):
                    await log.emit(event(round_ * 100 + k * 50 + i))
                await log.flush()
        report = await verify(dbs[0], ["default"], _keys(signer))
        assert report.ok, report.first_problem
        assert report.events == 200 and report.checkpoints == 8
    finally:
        for log in logs:
            await log.close()
        for db in dbs:
            await db.dispose()


def test_worker_count_follows_the_cores_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opsgate.audit import verify_parallel

    for cores, want in (({0}, 1), ({0, 1}, 2), (set(range(16)), 4)):
        monkeypatch.setattr(verify_parallel.os, "sched_getaffinity", lambda _pid, c=cores: c)
        assert verify_parallel.worker_count() == want


async def test_worker_pipes_never_deadlock_and_an_abandoned_worker_is_reaped(
    audit_env: tuple[Database, AuditLog, Signer],
) -> None:
    """Job lines and results both larger than a pipe: the jobs are written while results
    are read (writing them all first deadlocked once a worker blocked on its output), and a
    worker left blocked mid-output is killed and reaped without hanging."""
    from opsgate.audit import verify as verify_mod
    from opsgate.audit import verify_parallel

    db, log, _signer = audit_env
    await _fill(log, 600)
    hello = verify_mod._worker_source(db, "default")
    assert hello is not None
    job = {"after": 0, "upto": 600, "marks": list(range(1, 601)), "pad": "x" * 200_000}
    w = await verify_parallel._start(hello)
    task = asyncio.create_task(w.run([job] * 4))
    async with asyncio.timeout(20):
        results = [await w.results.get() for _ in range(4)]
        await task
        await w.stop(kill=False)
    assert [(h["n"], h["problem"], len(h["marks"]), len(leaves)) for h, leaves in results] == [
        (600, False, 600, 600 * 32)
    ] * 4
    # abandoned after one result, with more on the way: stop must not hang
    w = await verify_parallel._start(hello)
    task = asyncio.create_task(w.run([job] * 8))
    async with asyncio.timeout(20):
        await w.results.get()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await w.stop(kill=True)
    assert w.proc.returncode is not None
