"""OpsGate served over real HTTP (uvicorn on a free loopback port), for MCP clients in tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from opsgate.app import create_app
from opsgate.settings import Settings
from tests.conftest import migrated
from tests.fakes.mcp_upstream import free_port


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """Migrate, start the app, yield (base URL, runtime), stop it."""
    await migrated(settings)
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.state.runtime
    finally:
        server.should_exit = True
        await task


async def agent_key(rt: Any, name: str = "agent") -> str:
    created = await rt.identity.keys.create(
        tenant="default",
        name=name,
        kind="agent",
        roles=["agent"],
        scopes=[],
        created_by="t",
        expires_at=None,
    )
    return str(created.key)
