"""The upstream HTTP/1.1 client against a scripted raw-socket server: framing, keep-alive,
encodings, back-pressure, limits, cancellation and malformed answers."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from opsgate.errors import UpstreamError
from opsgate.gateway import upstream_http
from opsgate.gateway.providers.base import UpstreamStatusError, UpstreamTimeout
from opsgate.gateway.upstream_http import UpstreamClient

Reply = Callable[
    [bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]
]  # returns: keep the connection


@dataclass
class Server:
    url: str
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed_by_peer: asyncio.Event = field(default_factory=asyncio.Event)


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def serve(reply: Reply) -> AsyncIterator[Server]:
    srv = Server("")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        srv.connections += 1
        srv.open_now += 1
        srv.most_open = max(srv.most_open, srv.open_now)
        try:
            while (req := await _read_request(reader)) is not None:
                srv.requests.append(req)
                if not await reply(req, reader, writer):
                    break
            else:
                srv.closed_by_peer.set()
        except ConnectionError:
            srv.closed_by_peer.set()
        finally:
            srv.open_now -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    srv.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        yield srv
    finally:
        server.close()


def client(**kw: int) -> UpstreamClient:
    opts = {"max_connections": 8, "max_keepalive": 8, **kw}
    return UpstreamClient(connect_timeout=2, idle_timeout=2, **opts)


def answer(body: bytes, status: str = "200 OK", headers: str = "") -> Reply:
    async def reply(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body
        )
        await w.drain()
        return True

    return reply


H = {"content-type": "application/json", "authorization": "Bearer sk-test"}


async def failed_code(url: str) -> str:
    """The error code of one call to `url` on a fresh client (which must fail)."""
    c = client()
    try:
        with pytest.raises(UpstreamError) as err:
            await c.post_json(url, b"{}", H, 5)
        return err.value.code
    finally:
        await c.aclose()


async def test_request_on_the_wire_and_keep_alive_reuse() -> None:
    async with serve(answer(b'{"ok":true}')) as srv:
        c = client()
        for _ in range(3):
            assert await c.post_json(srv.url, b'{"a":1}', H, 5) == b'{"ok":true}'
        await c.aclose()
    assert srv.connections == 1
    head, _, body = srv.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert b"Content-Length: 7" in lines and b"authorization: Bearer sk-test" in lines
    assert not any(x.lower().startswith((b"accept-encoding", b"cookie")) for x in lines)
    assert body == b'{"a":1}'


async def test_chunked_and_close_delimited_bodies() -> None:
    async def chunked(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b'{"a":', b'"b"}'):
            w.write(b"%x\r\n%s\r\n" % (len(part), part))
            await w.drain()
        w.write(b"0\r\n\r\n")
        return True

    async def until_close(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"x":1}')
        await w.drain()
        return False

    async with serve(chunked) as srv:
        c = client()
        assert await c.post_json(srv.url, b"{}", H, 5) == b'{"a":"b"}'
        assert await c.post_json(srv.url, b"{}", H, 5) == b'{"a":"b"}'
        assert srv.connections == 1
    async with serve(until_close) as srv:
        assert await c.post_json(srv.url, b"{}", H, 5) == b'{"x":1}'
        assert await c.post_json(srv.url, b"{}", H, 5) == b'{"x":1}'
        assert srv.connections == 2  # "Connection: close" is honoured
    await c.aclose()


async def test_gzip_decoded_and_unknown_encoding_refused() -> None:
    packed = gzip.compress(b'{"z":"' + b"y" * 5000 + b'"}')
    async with serve(answer(packed, headers="Content-Encoding: gzip\r\n")) as srv:
        c = client()
        assert (await c.post_json(srv.url, b"{}", H, 5)).startswith(b'{"z":"yyy')
    await c.aclose()
    async with serve(answer(b"???", headers="Content-Encoding: br\r\n")) as srv:
        assert await failed_code(srv.url) == "upstream_invalid_response"


async def test_error_status_keeps_a_bounded_body_and_retry_after() -> None:
    big = b"e" * (upstream_http.ERROR_BODY_MAX * 4)
    async with serve(answer(big, "429 Too Many Requests", "Retry-After: 7\r\n")) as srv:
        c = client()
        with pytest.raises(UpstreamStatusError) as err:
            await c.post_json(srv.url, b"{}", H, 5)
        assert err.value.upstream_status == 429 and err.value.retry_after == 7
        assert len(err.value.upstream_body or "") <= 2000
        with pytest.raises(UpstreamStatusError):
            await c.post_json(srv.url, b"{}", H, 5)
        assert srv.connections == 2  # a half-read error answer's connection is not reused
        await c.aclose()


async def test_interim_100_continue_is_skipped() -> None:
    async def reply(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async with serve(reply) as srv:
        c = client()
        assert await c.post_json(srv.url, b"{}", H, 5) == b"{}"
        await c.aclose()


@pytest.mark.parametrize(
    "raw",
    [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", b"HTTP/1.1 99999 ?\r\n"],
)
async def test_malformed_answers_are_invalid_responses(raw: bytes) -> None:
    async def reply(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(raw)
        await w.drain()
        await asyncio.sleep(0.2)
        return False

    async with serve(reply) as srv:
        assert await failed_code(srv.url) in {"upstream_invalid_response", "upstream_disconnected"}


async def test_truncated_answer_is_a_disconnect() -> None:
    async def reply(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial":')
        await w.drain()
        return False

    async with serve(reply) as srv:
        assert await failed_code(srv.url) == "upstream_disconnected"


async def test_header_injection_refused_before_sending() -> None:
    async with serve(answer(b"{}")) as srv:
        c = client()
        for bad in ({"x-a": "v\r\nx-injected: 1"}, {"bad name": "v"}, {"x-a": "caf\u00e9\u2603"}):
            with pytest.raises(UpstreamError) as err:
                await c.post_json(srv.url, b"{}", bad, 5)
            assert err.value.code == "upstream_unreachable"
            assert "\r\n" not in err.value.detail and "injected" not in err.value.detail
        with pytest.raises(UpstreamError):
            await c.post_json("http://127.0.0.1:1/a b", b"{}", H, 5)
        with pytest.raises(UpstreamError):
            await c.post_json("file:///etc/passwd", b"{}", H, 5)
        await c.aclose()
    assert srv.connections == 0


async def test_cancelling_a_call_closes_its_connection() -> None:
    gone = asyncio.Event()

    async def never(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        with contextlib.suppress(ConnectionError):
            await r.read()  # returns at EOF: the client closed the connection
        gone.set()
        return False

    async with serve(never) as srv:
        c = client()
        task = asyncio.create_task(c.post_json(srv.url, b"{}", H, 30))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(gone.wait(), 2)  # the upstream saw the caller go
        await c.aclose()


async def test_timeout_maps_and_frees_the_slot() -> None:
    async def slow(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with serve(slow) as srv:
        c = client(max_connections=1)
        for _ in range(2):  # the second call gets the one slot back
            with pytest.raises(UpstreamTimeout):
                await c.post_json(srv.url, b"{}", H, 0.2)
        await c.aclose()


async def test_connection_limit_is_respected() -> None:
    async def slowish(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async with serve(slowish) as srv:
        c = client(max_connections=2)
        out = await asyncio.gather(*(c.post_json(srv.url, b"{}", H, 5) for _ in range(8)))
        assert out == [b"{}"] * 8
        assert srv.most_open <= 2
        await c.aclose()


async def test_no_keepalive_closes_each_connection() -> None:
    async with serve(answer(b"{}")) as srv:
        c = client(max_keepalive=0)
        for _ in range(3):
            await c.post_json(srv.url, b"{}", H, 5)
        assert srv.connections == 3
        await c.aclose()


async def test_stale_pooled_connection_is_retried_once_on_a_fresh_one() -> None:
    async def once(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await w.drain()
        return False  # answered as keep-alive, then closed: an idle timeout on the upstream

    async with serve(once) as srv:
        c = client()
        for _ in range(3):
            assert await c.post_json(srv.url, b"{}", H, 5) == b"{}"
        assert srv.connections == 3
        await c.aclose()


async def test_whole_answer_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_http, "BODY_MAX", 1000)
    async with serve(answer(b"x" * 5000)) as srv:
        assert await failed_code(srv.url) == "upstream_invalid_response"


async def test_stream_back_pressure_and_integrity() -> None:
    total = 3 * 1024 * 1024
    piece = bytes(range(256)) * 64  # 16 KiB

    async def big(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(total // len(piece)):
            w.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await w.drain()
        w.write(b"0\r\n\r\n")
        await w.drain()
        return True

    async with serve(big) as srv:
        c = client()
        stream = await c.open_stream(srv.url, b"{}", H, 5)
        got = bytearray()
        paused_seen = False
        async for chunk in stream.chunks():
            got += chunk
            paused_seen = paused_seen or stream._conn.paused
            if len(got) < total // 2:
                await asyncio.sleep(0.001)  # a slow reader
        stream.finish()
        assert len(got) == total and got[: len(piece)] == piece
        assert paused_seen  # reading from the socket was paused while the reader lagged
        assert stream._conn.buffered == 0
        again = await c.open_stream(srv.url, b"{}", H, 5)
        assert sum([len(x) async for x in again.chunks()]) == total
        again.finish()
        assert srv.connections == 1  # the fully read connection went back to the pool
        await c.aclose()


async def test_stream_abandoned_midway_closes_the_connection() -> None:
    async def drip(req: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            w.write(b"5\r\ndata\n\r\n")
            await w.drain()
            await asyncio.sleep(0.02)
        return True

    async with serve(drip) as srv:
        c = client()
        stream = await c.open_stream(srv.url, b"{}", H, 5)
        async for _ in stream.chunks():
            break
        stream.finish()
        await asyncio.wait_for(srv.closed_by_peer.wait(), 2)
        await c.aclose()


def test_works_on_uvloop() -> None:
    """The server runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    import uvloop

    async def main() -> None:
        async with serve(answer(b'{"u":1}')) as srv:
            c = client()
            for _ in range(2):
                assert await c.post_json(srv.url, b"{}", H, 5) == b'{"u":1}'
            stream = await c.open_stream(srv.url, b"{}", H, 5)
            assert b"".join([x async for x in stream.chunks()]) == b'{"u":1}'
            stream.finish()
            assert srv.connections == 1
            await c.aclose()

    uvloop.run(main())
