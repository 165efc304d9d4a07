"""Approval gates over MCP: held calls with progress, input-required state, restarts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, InputRequiredResult

from opsgate.audit.query import EventFilter, list_events
from opsgate.identity.principal import Principal
from opsgate.runtime import Runtime
from opsgate.settings import Settings
from tests.conftest import migrated
from tests.tools.fakeops import APPROVER, OpsConnector
from tests.tools.serving import ARGS, Served, pending_id


async def test_held_call_streams_progress_and_returns_the_result_once_approved(
    served: Served,
) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, message))

    async with (
        served.http() as http,
        streamable_http_client(served.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        call = asyncio.create_task(
            session.call_tool("k8s.delete_pod", ARGS, progress_callback=on_progress)
        )
        approval_id = await pending_id(served.rt)
        await asyncio.sleep(0.5)  # let a couple of progress notifications through
        assert served.ops.calls == []  # nothing runs before approval
        await served.rt.approvals.decide(APPROVER, approval_id, approve=True)
        result = await call
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["status"] == "executed"
    assert result.structured_content["approval_id"] == approval_id
    assert served.ops.calls == [("k8s.delete_pod", ARGS)]
    assert progress and approval_id in (progress[0][1] or "")


async def test_pending_after_the_hold_for_handshake_clients(served: Served) -> None:
    async with (
        served.http() as http,
        streamable_http_client(served.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("k8s.delete_pod", ARGS)
        # Not an error: the agent is told to wait and how to retry.
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["status"] == "pending_approval"
        approval_id = result.structured_content["approval_id"]
        assert approval_id in result.content[0].text  # type: ignore[union-attr]
        await served.rt.approvals.decide(APPROVER, approval_id, approve=True, reason="ok")
        settled = await served.rt.held.wait("default", approval_id, 10, poll=0.05)
        assert settled.status == "executed"
        # The idempotent retry returns the stored result; nothing runs twice.
        again = await session.call_tool(
            "k8s.delete_pod", ARGS, meta={"opsgate/approval_id": approval_id}
        )
        assert again.structured_content is not None
        assert again.structured_content["status"] == "executed"
    assert len(served.ops.calls) == 1


async def test_denied_while_held_is_reported_and_nothing_runs(served: Served) -> None:
    async with (
        served.http() as http,
        streamable_http_client(served.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        call = asyncio.create_task(session.call_tool("k8s.delete_pod", ARGS))
        approval_id = await pending_id(served.rt)
        await served.rt.approvals.decide(APPROVER, approval_id, approve=False, reason="no")
        result = await call
    assert result.is_error and "denied" in result.content[0].text  # type: ignore[union-attr]
    assert served.ops.calls == []


async def test_input_required_state_for_2026_clients_and_forged_state_alerts(
    served: Served,
) -> None:
    async with (
        served.http() as http,
        Client(streamable_http_client(served.url, http_client=http), mode="2026-07-28") as c,
    ):
        first = await c.session.call_tool("k8s.delete_pod", ARGS, allow_input_required=True)
        assert isinstance(first, InputRequiredResult) and first.request_state
        approval_id = (await served.rt.approvals.list_requests("default", "pending"))[0].id
        # sealed: the client cannot read or change what the state says
        assert approval_id not in first.request_state
        forged = first.request_state[:-6] + (
            "AAAAAA" if first.request_state[-6:] != "AAAAAA" else "BBBBBB"
        )
        with pytest.raises(MCPError):
            await c.session.call_tool(
                "k8s.delete_pod", ARGS, request_state=forged, allow_input_required=True
            )
        await served.rt.approvals.decide(APPROVER, approval_id, approve=True)
        done = await c.session.call_tool(
            "k8s.delete_pod", ARGS, request_state=first.request_state, allow_input_required=True
        )
        assert isinstance(done, CallToolResult) and not done.is_error
        assert done.structured_content is not None
        assert done.structured_content["status"] == "executed"
    await served.rt.audit.flush()
    events, _ = await list_events(
        served.rt.db, "default", EventFilter(action_prefix="mcp.request_state"), None, 10
    )
    assert [e["outcome"] for e in events] == ["denied"]
    assert len(served.ops.calls) == 1


async def test_approved_work_survives_a_restart(make_settings: Any) -> None:
    """Approved while the server was down (or before it ran it): the next start runs it once."""
    settings: Settings = make_settings(tools={"approval_poll_seconds": 0.1})
    await migrated(settings)
    agent = Principal(id="key:a1", kind="agent", tenant="default", roles=frozenset({"agent"}))
    rt = await Runtime.start(settings)
    ops = OpsConnector.install(rt)
    out = await rt.tools.call(agent, "k8s.delete_pod", ARGS, rationale="stuck")
    assert out.status == "pending_approval" and out.approval_id
    await rt.held.aclose()  # the process "dies" before it could run the approval...
    await rt.approvals.decide(APPROVER, out.approval_id, approve=True)
    assert ops.calls == []
    await rt.close()

    rt2 = await Runtime.start(settings)  # ...and the next start picks it up
    try:
        ops2 = OpsConnector.install(rt2)
        req = await rt2.held.wait("default", out.approval_id, 10, poll=0.05)
        assert req.status == "executed"
        assert ops2.calls == [("k8s.delete_pod", ARGS)]
        await rt2.held.sweep()  # sweeping again runs nothing twice
        assert len(ops2.calls) == 1
    finally:
        await rt2.close()


async def test_many_pending_approvals_held_at_once(served: Served) -> None:
    """Held calls cost a waiter each, no polling storm; all settle when decided."""
    N = 12  # bench/tools.py holds 500; this checks the semantics
    served.rt.tools.settings.approval_hold_seconds = 60  # none may time out on a busy machine
    async with (
        served.http() as http,
        streamable_http_client(served.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        calls = [
            asyncio.create_task(
                session.call_tool("k8s.delete_pod", {"namespace": "prod", "name": f"p{i}"})
            )
            for i in range(N)
        ]
        for _ in range(1500):
            pending = await served.rt.approvals.list_requests("default", "pending")
            if len(pending) == N and served.rt.held.held == N:
                break
            await asyncio.sleep(0.02)
        assert served.rt.held.held == N
        for req in pending:
            await served.rt.approvals.decide(APPROVER, req.id, approve=True)
        results = await asyncio.gather(*calls)
    statuses = [r.structured_content["status"] for r in results if r.structured_content]
    # Each call returned either its result or (hold ran out) "pending" with the approval id.
    assert len(statuses) == N and set(statuses) <= {"executed", "pending_approval"}
    for req in pending:
        settled = await served.rt.held.wait("default", req.id, 10, poll=0.05)
        assert settled.status == "executed"
    assert len(served.ops.calls) == N
    assert served.rt.held.held == 0


async def test_approval_status_tool_shows_only_your_own_requests(served: Served) -> None:
    async with (
        served.http() as http,
        streamable_http_client(served.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        names = {t.name for t in (await session.list_tools()).tools}
        assert "approvals.status" in names
        other = Principal(
            id="key:other", kind="agent", tenant="default", roles=frozenset({"agent"})
        )
        theirs = await served.rt.tools.call(other, "k8s.delete_pod", ARGS)
        assert theirs.approval_id
        hidden = await session.call_tool("approvals.status", {"approval_id": theirs.approval_id})
        assert hidden.is_error and "no approval request" in hidden.content[0].text  # type: ignore[union-attr]
        mine = await session.call_tool("k8s.delete_pod", ARGS)
        assert mine.structured_content is not None
        approval_id = mine.structured_content["approval_id"]
        await served.rt.approvals.decide(APPROVER, approval_id, approve=True)
        await served.rt.held.wait("default", approval_id, 10, poll=0.05)
        status = await session.call_tool("approvals.status", {"approval_id": approval_id})
        assert status.structured_content is not None
        assert status.structured_content["status"] == "executed"
        assert status.structured_content["result"]["done"] == "k8s.delete_pod"
        with pytest.raises(MCPError):
            await session.call_tool("approvals.status", {"approval_id": 5})


async def test_rest_call_can_wait_for_the_approval(served: Served) -> None:
    import httpx

    base = served.url.removesuffix("/mcp")
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        call = asyncio.create_task(
            c.post(
                "/api/v1/tools/k8s.delete_pod/call",
                json={"arguments": ARGS, "wait_seconds": 10},
                headers={"Authorization": f"Bearer {served.agent}"},
            )
        )
        approval_id = await pending_id(served.rt)
        await served.rt.approvals.decide(APPROVER, approval_id, approve=True)
        r = await call
    assert r.status_code == 200 and r.json()["status"] == "executed", r.text
    assert r.json()["approval_id"] == approval_id


async def test_tools_cli_call_executions_undo(served: Served) -> None:
    """`opsgate tools` acts as the key's principal over REST: call, list executions, undo."""
    import json

    from typer.testing import CliRunner

    from opsgate.cli.main import app as cli

    base = ["--url", served.url.removesuffix("/mcp"), "--key", served.agent]
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["tools", *args, *base])

    r = await asyncio.to_thread(run, "list")
    assert r.exit_code == 0 and "k8s.scale" in r.stdout, r.output
    r = await asyncio.to_thread(
        run, "call", "k8s.scale", "--args", '{"namespace": "dev", "name": "api", "replicas": 4}'
    )
    assert r.exit_code == 0, r.output
    execution_id = json.loads(r.stdout)["execution_id"]
    assert served.ops.replicas == {"dev/api": 4}
    r = await asyncio.to_thread(run, "executions")
    assert execution_id in r.stdout
    r = await asyncio.to_thread(run, "undo", execution_id, "--rationale", "oops")
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "executed", r.output
    assert served.ops.replicas == {"dev/api": 3}
    r = await asyncio.to_thread(run, "call", "k8s.scale", "--args", "[1]")
    assert r.exit_code == 2 and "JSON object" in r.output
