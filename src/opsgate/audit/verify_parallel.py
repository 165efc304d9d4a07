"""Parallel verification: seq ranges checked in worker processes, fed in order.

The per-row checks (two SHA-256s and the column comparison) are pure Python under the GIL, so
one process tops out near 200k events/s. A large chain is cut into segments; worker processes
(`verify_worker`, one per core up to four) each check every n-th segment after the first
against the stored hash of the row before it, and return the leaf hashes; this process checks
the first segment itself while they start. It then takes the segments in seq order: confirms
each one starts from the digest the previous one ended with, feeds the leaves into the Merkle
frontier and checks the signed checkpoints, exactly as the sequential path does. A segment
with any problem, a break between segments or a failed worker ends the parallel pass; the
sequential scan then continues from the last good row, so the first bad event is named by the
same code whichever path found it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from opsgate.audit.verify_rows import Checked
from opsgate.telemetry.logging import get_logger

if TYPE_CHECKING:
    from opsgate.audit.verify import _ChainCheck

log = get_logger(__name__)

Result = tuple[dict[str, Any], bytes]
_MAX_WORKERS = 4


def worker_count() -> int:
    """One worker per core this process may run on (a process pinned to some cores gets
    fewer than the machine has; a container's CPU quota is not seen here), at most four."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


async def _read(stdout: asyncio.StreamReader) -> Result:
    size = int.from_bytes(await stdout.readexactly(4), "big")
    header: dict[str, Any] = orjson.loads(await stdout.readexactly(size))
    leaves = await stdout.readexactly(32 * int(header.get("n", 0)))
    return header, leaves


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        # At most two finished segments wait to be taken: memory stays bounded however
        # long the chain, and workers never wait on each other (each has its own queue).
        self.results: asyncio.Queue[Result] = asyncio.Queue(maxsize=2)

    async def _send(self, jobs: list[dict[str, Any]]) -> None:
        # Its own task: a long job list fills the pipe, and the worker reads the next job
        # only after its result has been read (one task doing both would deadlock).
        stdin = self.proc.stdin
        assert stdin is not None
        for job in jobs:
            stdin.write(orjson.dumps(job) + b"\n")
            await stdin.drain()
        stdin.close()

    async def run(self, jobs: list[dict[str, Any]]) -> None:
        proc = self.proc
        assert proc.stdout is not None
        sender = asyncio.create_task(self._send(jobs))
        try:
            for _ in jobs:
                result = await _read(proc.stdout)
                await self.results.put(result)
                if "error" in result[0]:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            await self.results.put(({"error": type(exc).__name__}, b""))
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender

    async def stop(self, kill: bool) -> None:
        """Reap the process; an abandoned worker may be blocked writing a result: kill it."""
        proc = self.proc
        if kill and proc.returncode is None:
            proc.kill()
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            async with asyncio.timeout(5):
                await self._reap()
        except TimeoutError:
            proc.kill()
            await self._reap()

    async def _reap(self) -> None:
        # Output is read to the end first: the process transport reports the exit only once
        # every pipe is closed, and a paused pipe never sees its end.
        if self.proc.stdout is not None:
            while await self.proc.stdout.read(1 << 20):
                pass
        await self.proc.wait()


async def _start(hello: dict[str, Any]) -> _Worker:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",  # no current directory on the worker's import path
        "-m",
        "opsgate.audit.verify_worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # errors come back as frames, without secrets
    )
    assert proc.stdin is not None
    proc.stdin.write(orjson.dumps(hello) + b"\n")  # carries the DSN: a pipe, never argv
    return _Worker(proc)


def _bounds(count: int, segment: int) -> list[tuple[int, int]]:
    return [(a, min(a + segment, count)) for a in range(0, count, segment)]


async def scan(
    check: _ChainCheck,
    hello: dict[str, Any],
    count: int,
    workers: int,
    segment: int,
    local: Callable[[int], Awaitable[None]],
) -> int:
    """Check seqs 1..count of `check`'s tenant, feeding `check` (a verify._ChainCheck standing
    at seq 1) in order: the first segment here with `local(upto)` while the worker processes
    start, the others in the workers. Returns how many events the workers' segments gave.
    Stops early, leaving `check` at the last good row, on any problem; the caller's
    sequential scan goes on from there."""
    (_, first), *rest = _bounds(count, segment)
    n = min(workers, len(rest))
    marks = check.marks
    jobs = [{"after": a, "upto": u, "marks": [m for m in marks if a < m <= u]} for a, u in rest]
    pool: list[_Worker] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        try:
            for _ in range(n):
                pool.append(await _start(hello))
        except OSError as exc:  # no processes or descriptors left: check it all here
            log.warning("audit.verify.worker_failed", error=type(exc).__name__)
            return 0
        tasks = [asyncio.create_task(w.run(jobs[k::n])) for k, w in enumerate(pool)]
        await local(first)
        if check.report.first_problem is not None or check.expected != first + 1:
            return 0
        for i, (after, upto) in enumerate(rest):
            header, leaves = await pool[i % n].results.get()
            if not _continues(check, header, after, upto):
                return after - first
            checked = Checked(
                [leaves[j : j + 32] for j in range(0, len(leaves), 32)],
                {int(m) - after - 1: bytes.fromhex(d) for m, d in header["marks"].items()},
                bytes.fromhex(header["last"]),
                int(header["expected"]),
            )
            if not check.take(checked):
                return after - first
        return count - first
    finally:
        finished = all(t.done() for t in tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(w.stop(kill=not finished) for w in pool))


def _continues(check: _ChainCheck, header: dict[str, Any], after: int, upto: int) -> bool:
    """Whether a segment's result can be taken as is: read fully, no problem in it, and
    chained to where the rows before it ended."""
    if "error" in header:
        log.warning("audit.verify.worker_failed", error=header["error"])
        return False
    return (
        not header["problem"]
        and int(header["expected"]) == upto + 1
        and check.expected == after + 1
        and check.prev.hex() == header["start"]
    )
