"""The MCP tasks extension (2026-07-28): a call held for approval as a task the client polls.

The client side is the SDK's own extension mechanism (a `ResultClaim` for `resultType: "task"`
whose resolver polls `tasks/get`), so these tests drive OpsGate the way a tasks-aware client
would.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

import httpx
import pytest
from mcp.client.client import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, InputRequiredResult, Request, RequestParams, Result
from pydantic import TypeAdapter
from typer.testing import CliRunner

from opsgate.audit.query import EventFilter, list_events
from opsgate.cli.main import app as cli
from opsgate.tools.mcp_tasks import EXTENSION
from tests.tools.fakeops import APPROVER
from tests.tools.serving import ARGS, Served, agent_key, pending_id

_ANY = TypeAdapter(dict[str, Any])


class TaskId(RequestParams):
    task_id: str


class UpdateParams(TaskId):
    input_responses: dict[str, Any]


class GetTask(Request[TaskId, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param: ClassVar[str | None] = "taskId"


class CancelTask(Request[TaskId, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param: ClassVar[str | None] = "taskId"


class UpdateTask(Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param: ClassVar[str | None] = "taskId"


class CreateTask(Result):
    result_type: Literal["task"]
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class Tasks(ClientExtension):
    """A minimal tasks-aware client: resolves a task by polling tasks/get until it ends."""

    identifier = EXTENSION

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTask, resolve=self.resolve)]

    async def resolve(self, task: CreateTask, ctx: ClaimContext) -> CallToolResult:
        self.seen.append(task.model_dump(by_alias=True))
        while True:
            await asyncio.sleep((task.poll_interval_ms or 1000) / 1000)
            got = await ctx.session.send_request(GetTask(params=TaskId(task_id=task.task_id)), _ANY)
            self.seen.append(got)
            if got["status"] == "completed":
                return CallToolResult.model_validate(got["result"])
            if got["status"] in ("cancelled", "failed"):
                raise RuntimeError(f"task ended {got['status']}")


def _client(served: Served, http: Any, *extensions: ClientExtension) -> Client:
    return Client(
        streamable_http_client(served.url, http_client=http),
        mode="2026-07-28",
        extensions=list(extensions),
    )


async def test_held_call_becomes_a_task_that_completes_once_approved(served: Served) -> None:
    tasks = Tasks()
    async with served.http() as http, _client(served, http, tasks) as c:
        call = asyncio.create_task(c.call_tool("k8s.delete_pod", ARGS))
        approval_id = await pending_id(served.rt)
        await asyncio.sleep(0.3)  # a few polls while it waits
        assert served.ops.calls == []  # nothing runs before approval
        await served.rt.approvals.decide(APPROVER, approval_id, approve=True)
        result = await asyncio.wait_for(call, 30)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["status"] == "executed"
    assert result.structured_content["approval_id"] == approval_id
    assert served.ops.calls == [("k8s.delete_pod", ARGS)]
    first = tasks.seen[0]
    # The task handle is the approval, created durably before the answer.
    assert first["taskId"] == approval_id and first["status"] == "working"
    assert first["resultType"] == "task" and first["pollIntervalMs"] == 100
    assert "waiting for human approval" in first["statusMessage"]
    assert first["createdAt"].endswith("Z") and first["ttlMs"] is None
    polls = [s["status"] for s in tasks.seen[1:]]
    assert polls[-1] == "completed" and set(polls[:-1]) <= {"working"} and len(polls) >= 2


async def test_denied_task_completes_with_an_error_result(served: Served) -> None:
    async with served.http() as http, _client(served, http, Tasks()) as c:
        call = asyncio.create_task(c.call_tool("k8s.delete_pod", ARGS))
        approval_id = await pending_id(served.rt)
        await served.rt.approvals.decide(APPROVER, approval_id, approve=False, reason="no")
        result = await asyncio.wait_for(call, 30)
    assert result.is_error and "denied" in result.content[0].text  # type: ignore[union-attr]
    assert served.ops.calls == []


async def test_cancel_withdraws_the_request_and_nothing_runs(served: Served) -> None:
    async with served.http() as http, _client(served, http, Tasks()) as c:
        task = await c.session.call_tool("k8s.delete_pod", ARGS, allow_claimed=True)
        assert isinstance(task, CreateTask)
        tid = task.task_id
        update = UpdateTask(params=UpdateParams(task_id=tid, input_responses={"x": {}}))
        assert (await c.session.send_request(update, _ANY)).get("resultType") == "complete"
        await c.session.send_request(CancelTask(params=TaskId(task_id=tid)), _ANY)
        got = await c.session.send_request(GetTask(params=TaskId(task_id=tid)), _ANY)
        assert got["status"] == "cancelled" and "withdrawn" in got["statusMessage"]
        # Cancelling again is acknowledged and changes nothing.
        await c.session.send_request(CancelTask(params=TaskId(task_id=tid)), _ANY)
    req = await served.rt.approvals.get("default", tid)
    assert req.status == "cancelled"
    with pytest.raises(Exception, match="already cancelled"):
        await served.rt.approvals.decide(APPROVER, tid, approve=True)
    assert served.ops.calls == []
    await served.rt.audit.flush()
    events, _ = await list_events(
        served.rt.db, "default", EventFilter(action_prefix="approval.withdrawn"), None, 10
    )
    assert len(events) == 1 and events[0]["resource"] == f"approval:{tid}"


async def test_cancel_after_approval_does_not_stop_the_operation(served: Served) -> None:
    async with served.http() as http, _client(served, http, Tasks()) as c:
        task = await c.session.call_tool("k8s.delete_pod", ARGS, allow_claimed=True)
        assert isinstance(task, CreateTask)
        await served.rt.approvals.decide(APPROVER, task.task_id, approve=True)
        await served.rt.held.wait("default", task.task_id, 10, poll=0.05)
        await c.session.send_request(CancelTask(params=TaskId(task_id=task.task_id)), _ANY)
        got = await c.session.send_request(GetTask(params=TaskId(task_id=task.task_id)), _ANY)
    assert got["status"] == "completed" and got["result"]["isError"] is False
    assert got["result"]["structuredContent"]["result"]["done"] == "k8s.delete_pod"
    assert len(served.ops.calls) == 1


async def test_tasks_are_private_to_their_requester(served: Served) -> None:
    other = await agent_key(served.rt, "other-agent")
    async with served.http() as http, _client(served, http, Tasks()) as c:
        task = await c.session.call_tool("k8s.delete_pod", ARGS, allow_claimed=True)
        assert isinstance(task, CreateTask)
    async with served.http(other) as http, _client(served, http, Tasks()) as c:
        for request in (GetTask, CancelTask):
            with pytest.raises(MCPError) as err:
                await c.session.send_request(request(params=TaskId(task_id=task.task_id)), _ANY)
            assert err.value.code == -32602 and "not found" in err.value.message
        with pytest.raises(MCPError) as err:
            await c.session.send_request(GetTask(params=TaskId(task_id="nope")), _ANY)
        assert err.value.code == -32602
    assert (await served.rt.approvals.get("default", task.task_id)).status == "pending"


async def test_clients_without_the_extension_keep_input_required(served: Served) -> None:
    async with served.http() as http, _client(served, http) as c:
        first = await c.session.call_tool("k8s.delete_pod", ARGS, allow_input_required=True)
        assert isinstance(first, InputRequiredResult)  # held, then sealed state (no task)
        approval_id = (await served.rt.approvals.list_requests("default", "pending"))[0].id
        with pytest.raises(MCPError) as err:
            await c.session.send_request(GetTask(params=TaskId(task_id=approval_id)), _ANY)
    assert err.value.code == -32021
    assert err.value.data == {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}


async def test_task_requests_are_checked_at_the_wire(served: Served) -> None:
    """Mcp-Name must carry the taskId; a bad taskId is a precise error; 2025 clients get -32601."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
    headers = {
        "Authorization": f"Bearer {served.agent}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tasks/get",
    }

    def body(params: dict[str, Any], method: str = "tasks/get") -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}

    async with httpx.AsyncClient(timeout=30) as http:
        # The extension is advertised by server/discover.
        r = await http.post(
            served.url,
            json=body({}, "server/discover"),
            headers={**headers, "Mcp-Method": "server/discover"},
        )
        assert r.json()["result"]["capabilities"]["extensions"] == {EXTENSION: {}}, r.text
        r = await http.post(
            served.url, json=body({"taskId": "abc"}), headers={**headers, "Mcp-Name": "xyz"}
        )
        assert r.json()["error"]["code"] == -32020, r.text
        r = await http.post(served.url, json=body({"taskId": 5}), headers=headers)
        assert r.json()["error"]["code"] == -32602, r.text
        r = await http.post(served.url, json=body({}), headers=headers)
        assert r.json()["error"]["code"] == -32602, r.text
    async with (
        served.http() as http2,
        Client(streamable_http_client(served.url, http_client=http2), mode="legacy") as legacy,
    ):
        with pytest.raises(MCPError) as err:
            await legacy.session.send_request(GetTask(params=TaskId(task_id="abc")), _ANY)
    assert err.value.code == -32601


async def test_rest_withdraw_by_the_requester_only(served: Served) -> None:
    async with served.http() as http, _client(served, http, Tasks()) as c:
        task = await c.session.call_tool("k8s.delete_pod", ARGS, allow_claimed=True)
        assert isinstance(task, CreateTask)
    base = served.url.removesuffix("/mcp")
    other = await agent_key(served.rt, "other-agent")
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        path = f"/api/v1/approvals/{task.task_id}/withdraw"
        r = await http.post(path, json={}, headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 404, r.text
        # The requester withdraws it with the CLI (over the same REST endpoint).
        cli_args = ["approvals", "withdraw", task.task_id, "--reason", "wrong pod"]
        out = await asyncio.to_thread(
            CliRunner().invoke, cli, [*cli_args, "--url", base, "--key", served.agent]
        )
        assert out.exit_code == 0 and "cancelled" in out.stdout, out.output
        assert (await served.rt.approvals.get("default", task.task_id)).status == "cancelled"
        r = await http.post(path, json={}, headers={"Authorization": f"Bearer {served.agent}"})
        assert r.status_code == 409 and "already cancelled" in r.text
        r = await http.post(
            path, json={"reason": 5}, headers={"Authorization": f"Bearer {served.agent}"}
        )
        assert r.status_code == 422
