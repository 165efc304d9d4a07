"""The link to a stdio upstream MCP server: the official SDK client over a subprocess.

Not a hot path (local processes, started from configuration only), so it keeps the SDK's
`ClientSession`; HTTP upstreams use opsgate.tools.upstream_client.HttpLink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import mcp.types as t
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from opsgate.telemetry.logging import get_logger
from opsgate.tools.upstream_client import LinkError

log = get_logger("opsgate.tools.upstream_stdio")
R = TypeVar("R")


class SdkLink:
    """One SDK `ClientSession`, owned by a background task: the SDK's transports are anyio
    context managers that must be left by the task that entered them."""

    def __init__(self) -> None:
        self.session: ClientSession | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self, streams: AbstractAsyncContextManager[Any]) -> SdkLink:
        """Start the session (bounded by the caller's timeout)."""
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(streams, ready))
        try:
            self.session = await ready
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _run(
        self, streams: AbstractAsyncContextManager[Any], ready: asyncio.Future[ClientSession]
    ) -> None:
        try:
            async with streams as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                if not ready.done():
                    ready.set_result(session)
                await self._stop.wait()
        except Exception as exc:  # the edge of a background task: hand over, or log
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.info("upstream link closed with an error", error=type(exc).__name__)
        finally:
            if not ready.done():
                ready.set_exception(ConnectionError("connection closed before it was ready"))

    @property
    def alive(self) -> bool:
        return self.session is not None and self._task is not None and not self._task.done()

    async def list_tools(self, cursor: str | None) -> t.ListToolsResult:
        assert self.session is not None
        params = t.PaginatedRequestParams(cursor=cursor) if cursor else None
        return await self._link_errors(self.session.list_tools(params=params))

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> t.CallToolResult:
        assert self.session is not None
        return await self._link_errors(self.session.call_tool(name, arguments))

    @staticmethod
    async def _link_errors(call: Awaitable[R]) -> R:
        try:
            return await call
        except MCPError as exc:  # the SDK's own stand-ins for a broken link
            if exc.code == t.CONNECTION_CLOSED:
                raise LinkError("connection to the upstream closed "
                                "(process exited or server went away)") from exc  # fmt: skip
            if exc.code == t.REQUEST_TIMEOUT:
                raise TimeoutError from exc
            raise

    async def aclose(self) -> None:
        self._stop.set()
        self.session = None
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
