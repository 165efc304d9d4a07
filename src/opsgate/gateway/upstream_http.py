"""The HTTP client for upstream model calls: HTTP/1.1 on asyncio, keep-alive pooled.

Written here rather than taken from a library, because of what the libraries cost on the
gateway's hot path (measured on the bench machine against the same mock, one core, 16 calls in
flight, CPU per call; docs/benchmarks.md):

* aiohttp: ~270 us, ~15% of a whole gateway request. Its general machinery (URL and
  multidict header objects, cookie and proxy handling, trace hooks, per-chunk timers) is most
  of it; a call on an idle process also took ~0.3 ms longer.
* httpx: its pool re-checks every idle connection on each request (~16x slower than aiohttp).
* pyreqwest (Rust): ~150 us, but cancelling the awaiting task does not abort the request, so
  the upstream would go on generating for a caller that has gone (the gateway must cancel).

This client does only what the gateway needs, in ~100 us: POST a body; parse the status,
headers and body (Content-Length, chunked, or until close) with httptools, the parser uvicorn
itself uses; hand the body over whole or as a stream with back-pressure. Cancelling a call, a
timeout or an unfinished stream closes its connection, so the upstream sees the caller go.

Redirects are never followed (a 3xx is an error status), no proxy variables are read and no
cookies are kept: upstream URLs come only from configuration. TLS uses Python's default
context (the system's CA store, `SSL_CERT_FILE` included) with hostname verification.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

from opsgate.errors import UpstreamError
from opsgate.gateway.providers.base import (
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    retry_after_seconds,
)

# How much of an error body is read from upstream (kept for logs, never sent to clients).
ERROR_BODY_MAX = 16 * 1024
# A whole (non-streamed) answer larger than this is refused rather than held in memory.
BODY_MAX = 64 * 1024 * 1024
# Streamed bytes buffered before the socket stops being read (back-pressure), and resumed at.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
KEEPALIVE_SECONDS = 30.0
_URLS_MAX = 512


class _Closed(ConnectionError):
    """The upstream closed the connection before the answer was complete."""


class _BadResponse(UpstreamError):
    code = "upstream_invalid_response"
    title = "Upstream sent an invalid response"


def transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout("upstream timed out")
    if isinstance(exc, _Closed | ConnectionResetError | BrokenPipeError):
        return UpstreamError("upstream closed the connection", code="upstream_disconnected")
    if isinstance(exc, ssl.SSLError):
        return UpstreamUnreachable("upstream TLS handshake failed")
    if isinstance(exc, OSError):
        return UpstreamUnreachable("upstream unreachable")
    return UpstreamUnreachable(f"upstream call failed ({type(exc).__name__})")


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port: the pool key
    tls: bool
    host: str
    port: int
    head: bytes  # "POST <path> HTTP/1.1\r\nHost: <host>\r\n"


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise UpstreamUnreachable("upstream URL is not an absolute http(s) URL")
    tls = parts.scheme == "https"
    default = 443 if tls else 80
    try:
        port = parts.port or default
    except ValueError:
        raise UpstreamUnreachable("upstream URL has an invalid port") from None
    name = f"[{host}]" if ":" in host else host
    host_header = name if port == default else f"{name}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in path + host_header for c in "\r\n\x00 "):
        raise UpstreamUnreachable("upstream URL contains control characters or spaces")
    head = f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n"
    return _Target((parts.scheme, host, port), tls, host, port, head.encode("latin-1"))


def _request_bytes(t: _Target, payload: bytes, headers: dict[str, str]) -> bytes:
    lines = [t.head, b"Content-Length: %d\r\n" % len(payload)]
    for k, v in headers.items():
        # Header injection guard: the values include credentials and configuration.
        if not k or any(c in k for c in "\r\n\x00: ") or any(c in v for c in "\r\n\x00"):
            raise UpstreamUnreachable("upstream request header is invalid")
        try:
            lines.append(f"{k}: {v}\r\n".encode("latin-1"))
        except UnicodeEncodeError:
            raise UpstreamUnreachable("upstream request header is invalid") from None
    lines.append(b"\r\n")
    lines.append(payload)
    return b"".join(lines)


class _Conn(asyncio.Protocol):
    """One HTTP/1.1 connection, used by one call at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head: asyncio.Future[None] = self.loop.create_future()
        self.buffer: deque[bytes] = deque()
        self.buffered = 0
        self.whole = False  # the reader wants the whole body: wake it only at the end
        self.waiter: asyncio.Future[None] | None = None
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.paused = False
        self.received = False
        self._informational = False
        self._decoder: Any = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_BadResponse("upstream asked to switch protocols"))
        except httptools.HttpParserError:
            self._fail(_BadResponse("upstream sent a malformed HTTP response"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the call

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete or self.error is not None:
            return
        te = self.headers.get("transfer-encoding", "")
        if self.head.done() and "content-length" not in self.headers and "chunked" not in te:
            self._finish_message(keep_alive=False)  # a body delimited by the close
        else:
            self._fail(_Closed("upstream closed the connection"))

    # -- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        prev = self.headers.get(key)
        self.headers[key] = text if prev is None else f"{prev}, {text}"

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints)
            self._informational = True
            self.headers = {}
            return
        self.status = status
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=47)  # gzip or zlib framing
        elif encoding not in ("identity", ""):
            self._fail(_BadResponse(f"upstream used an unsupported encoding {encoding[:20]!r}"))
            return
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.error is not None:
            return
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body)
            except zlib.error:
                self._fail(_BadResponse("upstream sent an undecodable body"))
                return
            if not body:
                return
        self.buffer.append(body)
        self.buffered += len(body)
        if self.whole:
            if self.buffered > BODY_MAX:
                self._fail(_BadResponse("upstream answer is too large"))
            return
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._finish_message(keep_alive=self.parser.should_keep_alive())

    # -- state ----------------------------------------------------------------------------

    def _finish_message(self, keep_alive: bool) -> None:
        if self._decoder is not None:
            try:
                rest = self._decoder.flush()
            except zlib.error:
                self._fail(_BadResponse("upstream sent an undecodable body"))
                return
            if rest:
                self.buffer.append(rest)
                self.buffered += len(rest)
        self.complete = True
        self.keep_alive = keep_alive
        if not self.head.done():
            self.head.set_result(None)
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved here: the caller may have gone
        self._wake()
        self.abort()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def _wait(self) -> None:
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    # -- reading --------------------------------------------------------------------------

    async def read_all(self, limit: int | None = None) -> bytes:
        """The whole body (or its first `limit` bytes, leaving the connection unusable)."""
        self.whole = limit is None
        if self.whole and self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        cap = BODY_MAX if limit is None else limit
        while not self.complete and self.error is None and self.buffered < cap:
            await self._wait()
        if self.error is not None:
            raise self.error
        if limit is None and (self.buffered > BODY_MAX or not self.complete):
            self.abort()
            raise _BadResponse("upstream answer is too large")
        data = b"".join(self.buffer)
        self.buffer.clear()
        self.buffered = 0
        return data if limit is None else data[:limit]

    async def read_chunk(self) -> bytes | None:
        while True:
            if self.buffer:
                piece = self.buffer.popleft()
                self.buffered -= len(piece)
                if self.paused and self.buffered <= LOW_WATER and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                return piece
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            await self._wait()

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and self.error is None and not self.closed


class UpstreamClient:
    """POSTs JSON and opens response streams; maps failures to typed upstream errors."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        idle_timeout: float,
        max_connections: int,
        max_keepalive: int,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._keepalive = max_keepalive
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, str, int], deque[_Conn]] = {}
        self._targets: dict[str, _Target] = {}
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    def _target(self, url: str) -> _Target:
        t = self._targets.get(url)
        if t is None:
            t = _target(url)
            if len(self._targets) >= _URLS_MAX:
                self._targets.clear()
            self._targets[url] = t
        return t

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def _connect(self, t: _Target) -> _Conn:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._connect_timeout):
            _, conn = await loop.create_connection(
                lambda: _Conn(loop),
                t.host,
                t.port,
                ssl=self._tls_context() if t.tls else None,
                server_hostname=t.host if t.tls else None,
            )
        return conn

    def _pooled(self, t: _Target) -> _Conn | None:
        idle = self._idle.get(t.origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle and (idle[0].closed or now - idle[0].idle_since > KEEPALIVE_SECONDS):
            idle.popleft().abort()
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def _release(self, t: _Target, conn: _Conn) -> None:
        if conn.reusable and not self._closed and self._keepalive > 0:
            idle = self._idle.setdefault(t.origin, deque())
            if len(idle) < self._keepalive:
                conn.idle_since = time.monotonic()
                conn._begin()
                idle.append(conn)
                return
        conn.abort()

    async def _send(self, t: _Target, request: bytes) -> _Conn:
        """A connection with the request written and the answer's head received."""
        if self._closed:
            raise UpstreamUnreachable("upstream client is closed")
        conn = self._pooled(t)
        if conn is not None:
            try:
                return await self._exchange(conn, request)
            except _Closed:
                # The upstream closed an idle kept-alive connection as the request went out
                # (it answered nothing): the request was not processed, so one fresh try.
                if conn.received:
                    raise
        return await self._exchange(await self._connect(t), request)

    async def _exchange(self, conn: _Conn, request: bytes) -> _Conn:
        try:
            assert conn.transport is not None
            conn.transport.write(request)
            await conn.head
        except BaseException:
            conn.abort()
            raise
        return conn

    async def post_json(
        self, url: str, payload: bytes, headers: dict[str, str], budget: float
    ) -> bytes:
        """The body of a 2xx answer; raises UpstreamStatusError / transport errors."""
        t = self._target(url)
        request = _request_bytes(t, payload, headers)
        conn: _Conn | None = None
        try:
            async with self._slots, asyncio.timeout(budget):
                conn = await self._send(t, request)
                if conn.status >= 300:
                    body = await conn.read_all(ERROR_BODY_MAX)
                    conn.abort()
                    raise UpstreamStatusError(conn.status, body, retry_after_seconds(conn.headers))
                data = await conn.read_all()
                self._release(t, conn)
                conn = None
                return data
        except (OSError, TimeoutError, ConnectionError, ValueError) as exc:
            raise transport_error(exc) from None
        finally:
            if conn is not None and not conn.closed and not conn.reusable:
                conn.abort()  # cancelled or failed mid-answer: the upstream sees us go

    async def open_stream(
        self, url: str, payload: bytes, headers: dict[str, str], budget: float
    ) -> UpstreamStream:
        """A 2xx streaming response (headers received within `budget`)."""
        t = self._target(url)
        request = _request_bytes(t, payload, headers)
        await self._slots.acquire()
        conn: _Conn | None = None
        try:
            async with asyncio.timeout(budget):
                conn = await self._send(t, request)
                if conn.status >= 300:
                    body = await conn.read_all(ERROR_BODY_MAX)
                    raise UpstreamStatusError(conn.status, body, retry_after_seconds(conn.headers))
        except BaseException as exc:
            if conn is not None:
                conn.abort()
            self._slots.release()
            if isinstance(exc, OSError | TimeoutError | ValueError):
                raise transport_error(exc) from None
            raise
        return UpstreamStream(self, t, conn)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().abort()
        self._idle.clear()


class UpstreamStream:
    def __init__(self, client: UpstreamClient, target: _Target, conn: _Conn) -> None:
        self._client = client
        self._target = target
        self._conn = conn
        self._open = True

    @property
    def headers(self) -> dict[str, str]:
        return self._conn.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """Bytes as they arrive (no buffering beyond what back-pressure allows)."""
        idle = self._client._idle_timeout
        conn = self._conn
        try:
            while True:
                async with asyncio.timeout(idle):
                    piece = await conn.read_chunk()
                if piece is None:
                    return
                yield piece
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise transport_error(exc) from None

    def finish(self) -> None:
        """Reuse a fully read connection; otherwise drop it, so the upstream sees the
        caller go away (client disconnect, error, early stop)."""
        if not self._open:
            return
        self._open = False
        self._client._release(self._target, self._conn)
        self._client._slots.release()
