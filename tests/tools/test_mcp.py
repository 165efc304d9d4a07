"""The MCP endpoint with the official MCP client over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from opsgate.settings import Settings
from tests.tools.serving import agent_key, serve


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[str, str, Any]]:
    async with serve(settings) as (url, rt):
        yield url, await agent_key(rt), rt


async def test_list_and_call_with_the_official_client(served: tuple[str, str, Any]) -> None:
    url, agent, _ = served
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {agent}"}) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        names = {t.name for t in tools.tools}
        assert "host.local_load" in names
        load = next(t for t in tools.tools if t.name == "host.local_load")
        assert load.annotations is not None and load.annotations.read_only_hint
        result = await session.call_tool("host.local_load", {})
        assert not result.is_error
        assert (
            result.structured_content is not None
            and result.structured_content["status"] == "executed"
        )
        bad = await session.call_tool("host.tcp_check", {"host": "example.test"})
        assert bad.is_error and "port" in bad.content[0].text  # precise schema error, nothing run
        ssrf = await session.call_tool("host.http_check", {"url": "http://169.254.169.254/"})
        assert ssrf.is_error and "private" in ssrf.content[0].text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-issued-for-opsgate"},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    ],
)
async def test_foreign_or_missing_tokens_401(
    served: tuple[str, str, Any], headers: dict[str, str]
) -> None:
    url, _, _ = served
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as c:
        r = await c.post(
            f"{url}/mcp",
            json=body,
            headers={**headers, "accept": "application/json, text/event-stream"},
        )
        assert r.status_code == 401
        assert "resource_metadata=" in r.headers["www-authenticate"]
        meta = (await c.get(f"{url}/.well-known/oauth-protected-resource")).json()
    assert meta["resource"].endswith("/mcp")


async def test_foreign_host_and_origin_refused(served: tuple[str, str, Any]) -> None:
    url, agent, _ = served
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    auth = {"Authorization": f"Bearer {agent}", "accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{url}/mcp", json=body, headers={**auth, "Host": "evil.example"})
        assert r.status_code == 403
        r = await c.post(f"{url}/mcp", json=body, headers={**auth, "Origin": "http://evil.example"})
        assert r.status_code == 403


async def test_approvals_cli_against_a_running_server(served: tuple[str, str, Any]) -> None:
    """An operator decides from the CLI as themselves; policy judges their key."""
    from typer.testing import CliRunner

    from opsgate.approvals.service import NewApproval
    from opsgate.cli.main import app as cli
    from opsgate.identity.principal import Principal

    url, _, rt = served
    agent = Principal(id="key:agent9", kind="agent", tenant="default", roles=frozenset({"agent"}))
    req = await rt.approvals.request(
        agent,
        NewApproval(
            tool="host.local_load",
            arguments={},
            rationale="r",
            zone="monitoring",
            gate="L2",
            policy_revision="x",
            policy_reasons=[],
            approver_groups=[],
        ),
    )
    approver = (
        await rt.identity.keys.create(
            tenant="default",
            name="appr",
            kind="service",
            roles=["approver"],
            scopes=[],
            created_by="t",
            expires_at=None,
        )
    ).key
    runner = CliRunner()
    base = ["--url", url, "--key", approver]
    r = await asyncio.to_thread(runner.invoke, cli, ["approvals", "list", *base])
    assert r.exit_code == 0 and req.id in r.stdout, r.output
    r = await asyncio.to_thread(
        runner.invoke, cli, ["approvals", "approve", req.id, "--reason", "ok", *base]
    )
    assert r.exit_code == 0 and "approved" in r.stdout, r.output
    r = await asyncio.to_thread(runner.invoke, cli, ["approvals", "approve", req.id, *base])
    assert r.exit_code == 1 and "409" in r.output
