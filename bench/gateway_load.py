"""Load drivers for the gateway bench: a minimal keep-alive HTTP/1.1 client on asyncio.

* `open_loop`: requests at a fixed rate regardless of completions (no coordinated
  omission: latency counts from each request's scheduled start).
* `closed_loop`: N requests as fast as `concurrency` connections allow (RSS runs).
* `ttfb`: time to the first streamed event.
Loopback only; every run is bounded by a request count and a time limit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson


@dataclass
class Target:
    url: str  # http://127.0.0.1:PORT/path
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def request(self) -> bytes:
        parts = urlsplit(self.url)
        head = [
            f"POST {parts.path} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(self.body)}",
        ]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body

    @property
    def addr(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    @classmethod
    async def open(cls, target: Target) -> Conn:
        r, w = await asyncio.open_connection(*target.addr)
        return cls(r, w)

    async def roundtrip(self, req: bytes, first_event: bool = False) -> tuple[int, float | None]:
        """Send one request, read the whole response; returns (status, ttfb of first event)."""
        t0 = time.perf_counter()
        self.w.write(req)
        head = await self.r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        first: float | None = None
        if b"transfer-encoding: chunked" in lower:
            while True:
                size_line = await self.r.readuntil(b"\r\n")
                size = int(size_line.strip(), 16)
                data = await self.r.readexactly(size + 2)
                if first_event and first is None and b"data:" in data:
                    first = time.perf_counter() - t0
                if size == 0:
                    break
        else:
            idx = lower.find(b"content-length:")
            n = int(lower[idx + 15 : lower.find(b"\r\n", idx)]) if idx >= 0 else 0
            await self.r.readexactly(n)
        return status, first

    def close(self) -> None:
        self.w.close()


@dataclass
class Result:
    latencies: list[float]
    errors: int
    elapsed: float
    statuses: dict[int, int]

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def open_loop(target: Target, rate: float, count: int, pool: int = 64) -> Result:
    """`count` requests at `rate` per second over a pool of keep-alive connections."""
    req = target.request()
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(pool):
        idle.put_nowait(await Conn.open(target))
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            status, _ = await conn.roundtrip(req)
            statuses[status] = statuses.get(status, 0) + 1
            lat.append(time.perf_counter() - scheduled)
            idle.put_nowait(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            conn.close()
            idle.put_nowait(await Conn.open(target))

    start = time.perf_counter()
    tasks = []
    for i in range(count):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return Result(lat, errors, elapsed, statuses)


async def closed_loop(target: Target, count: int, concurrency: int, limit_s: float) -> Result:
    req = target.request()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    left = count
    deadline = time.perf_counter() + limit_s

    async def worker() -> None:
        nonlocal left, errors
        conn = await Conn.open(target)
        while left > 0 and time.perf_counter() < deadline:
            left -= 1
            t0 = time.perf_counter()
            try:
                status, _ = await conn.roundtrip(req)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                conn.close()
                conn = await Conn.open(target)
                continue
            statuses[status] = statuses.get(status, 0) + 1
            lat.append(time.perf_counter() - t0)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(lat, errors, time.perf_counter() - start, statuses)


async def ttfb(target: Target, count: int) -> list[float]:
    """Sequential streamed requests; time to the first `data:` event of each."""
    req = target.request()
    conn = await Conn.open(target)
    out: list[float] = []
    try:
        for _ in range(count):
            status, first = await conn.roundtrip(req, first_event=True)
            if status == 200 and first is not None:
                out.append(first)
    finally:
        conn.close()
    return out


def chat_body(model: str, stream: bool = False) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "How is the cluster doing today?"}],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)
