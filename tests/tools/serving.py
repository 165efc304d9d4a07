"""OpsGate served over real HTTP (uvicorn on a free loopback port), for MCP clients in tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import uvicorn

from opsgate.app import create_app
from opsgate.runtime import Runtime
from opsgate.settings import Settings
from tests.conftest import migrated
from tests.fakes.mcp_upstream import free_port
from tests.tools.fakeops import OpsConnector

ARGS = {"namespace": "prod", "name": "api-7f9"}  # k8s.delete_pod in prod: L2


@dataclass
class Served:
    """A served OpsGate with the fake ops tools and an agent key (the `served` fixture)."""

    url: str  # the /mcp endpoint
    agent: str
    rt: Runtime
    ops: OpsConnector

    def http(self, key: str | None = None) -> httpx2.AsyncClient:
        token = key or self.agent
        return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=180)


async def pending_id(rt: Runtime) -> str:
    """The id of the (first) pending approval request, once one appears."""
    for _ in range(200):
        pending = await rt.approvals.list_requests("default", "pending")
        if pending:
            return pending[0].id
        await asyncio.sleep(0.02)
    raise AssertionError("no approval request appeared")


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
