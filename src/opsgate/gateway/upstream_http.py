"""The HTTP client for upstream calls: one aiohttp session per provider, keep-alive pooled.

aiohttp rather than httpx here: on this hot path httpcore's pool re-checks every idle
connection on each request (a poll() per socket), which measured ~16x slower at 16
concurrent calls (see docs/benchmarks.md). Redirects are never followed and the
environment's proxy variables are ignored: upstream URLs come only from configuration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from opsgate.errors import UpstreamError
from opsgate.gateway.providers.base import (
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    retry_after_seconds,
)

# How much of an error body is read from upstream (kept for logs, never sent to clients).
ERROR_BODY_MAX = 16 * 1024


def transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout("upstream timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnreachable("upstream unreachable")
    if isinstance(
        exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | ConnectionError
    ):
        return UpstreamError("upstream closed the connection", code="upstream_disconnected")
    return UpstreamUnreachable(f"upstream call failed ({type(exc).__name__})")


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
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=idle_timeout
        )
        self._limit = max_connections
        self._keepalive = max_keepalive
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running loop (aiohttp binds to it).
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                keepalive_timeout=30 if self._keepalive else 0,
                force_close=self._keepalive == 0,
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,
                # Upstream cookies are never kept: one session serves every tenant.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post_json(
        self, url: str, payload: bytes, headers: dict[str, str], budget: float
    ) -> bytes:
        """The body of a 2xx answer; raises UpstreamStatusError / transport errors."""
        try:
            async with asyncio.timeout(budget):
                async with self.session.post(
                    url, data=payload, headers=headers, allow_redirects=False
                ) as r:
                    if r.status >= 300:
                        body = await r.content.read(ERROR_BODY_MAX)
                        raise UpstreamStatusError(r.status, body, retry_after_seconds(r.headers))
                    return await r.read()
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise transport_error(exc) from None

    async def open_stream(
        self, url: str, payload: bytes, headers: dict[str, str], budget: float
    ) -> UpstreamStream:
        """A 2xx streaming response (headers received within `budget`)."""
        try:
            async with asyncio.timeout(budget):
                resp = await self.session.post(
                    url, data=payload, headers=headers, allow_redirects=False
                )
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise transport_error(exc) from None
        if resp.status >= 300:
            try:
                body = await resp.content.read(ERROR_BODY_MAX)
            except (aiohttp.ClientError, ConnectionError):
                body = b""
            finally:
                resp.release()
            raise UpstreamStatusError(resp.status, body, retry_after_seconds(resp.headers))
        return UpstreamStream(resp)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class UpstreamStream:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    @property
    def headers(self) -> Any:
        return self._resp.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """Bytes as they arrive (no buffering beyond the socket read)."""
        try:
            async for piece in self._resp.content.iter_any():
                yield piece
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise transport_error(exc) from None

    def finish(self) -> None:
        """Reuse a fully read connection; otherwise drop it, so the upstream sees the
        caller go away (client disconnect, error, early stop)."""
        if self._resp.content.at_eof():
            self._resp.release()
        else:
            self._resp.close()
