"""The MCP tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663, revision 2026-07-28).

A tool call that needs a human's approval becomes a task when the client declares the
extension on that request: the client gets a task handle at once instead of a held
connection, and polls `tasks/get` until the approval is decided and the call has run (on the
server, exactly once, as the requester: opsgate.tools.held). The task *is* the approval
request: its id is the approval id and its state the approval row's, so tasks survive
restarts and work across replicas with no task store of their own. Only the requester sees
or cancels a task; for anyone else the id does not exist.

Status mapping: pending, approved, executing -> `working`; executed -> `completed`; failed,
denied, expired -> `completed` with an error result (tool-level outcomes, which the
extension keeps apart from JSON-RPC failures); withdrawn -> `cancelled`. OpsGate never asks
for input during a task, so `tasks/update` only acknowledges. Status notifications over
`subscriptions/listen` (optional in the extension) are not offered: clients poll.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import mcp.types as t
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value
from mcp_types import CLIENT_CAPABILITIES_META_KEY
from mcp_types.jsonrpc import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
)
from pydantic import Field

from opsgate.approvals.models import ApprovalRequest
from opsgate.errors import NotFound
from opsgate.identity.principal import Principal
from opsgate.tools.catalog import Gate
from opsgate.tools.service import CallOutcome, ToolService, not_executed, stored_outcome

EXTENSION = "io.modelcontextprotocol/tasks"
REVISION = "2026-07-28"
_WORKING = {
    "pending": "waiting for human approval",
    "approved": "approved; about to run",
    "executing": "approved; running",
}


class TaskParams(t.RequestParams):
    task_id: str = Field(alias="taskId", min_length=1, max_length=36)


class UpdateTaskParams(TaskParams):
    input_responses: dict[str, Any] = Field(alias="inputResponses")


def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """This request's client capabilities list the extension (2026-07-28 sends them on every
    request; a task may only be returned to a request that declares it)."""
    if ctx.protocol_version < REVISION:
        return False
    caps = (ctx.meta or {}).get(CLIENT_CAPABILITIES_META_KEY)
    extensions = caps.get("extensions") if isinstance(caps, dict) else None
    return isinstance(extensions, dict) and EXTENSION in extensions


def _utc(ts: datetime) -> datetime:
    # SQLite hands timestamps back naive (they are stored in UTC).
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return _utc(ts).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_fields(req: ApprovalRequest, poll_seconds: float) -> dict[str, Any]:
    """The `Task` members every shape carries (status filled in by the caller)."""
    last = max(_utc(ts) for ts in (req.created_at, req.decided_at, req.executed_at) if ts)
    return {
        "taskId": req.id,
        "createdAt": _iso(req.created_at),
        "lastUpdatedAt": _iso(last),
        # Approval requests are kept (they are evidence), so a task never disappears; a pending
        # one ends at its expiry with a final status, which is what clients should wait for.
        "ttlMs": None,
        "pollIntervalMs": int(poll_seconds * 1000),
    }


def created(req: ApprovalRequest, poll_seconds: float) -> dict[str, Any]:
    """`CreateTaskResult` for a call that was just held for approval."""
    return {
        "resultType": "task",
        **task_fields(req, poll_seconds),
        "status": "working",
        "statusMessage": _working_message(req),
    }


def _working_message(req: ApprovalRequest) -> str:
    text = f"{_WORKING[req.status]} (gate {req.gate}, approval {req.id}"
    if req.status == "pending":
        groups = ", ".join(req.approver_groups) or "the zone's approvers"
        text += f", by {groups}, expires {_iso(req.expires_at)}"
    return text + ")"


class TaskViews:
    """`tasks/get`, `tasks/update`, `tasks/cancel` over approval requests."""

    def __init__(
        self, tools: ToolService, render: Callable[[CallOutcome], t.CallToolResult]
    ) -> None:
        self.tools, self.render = tools, render

    def install(self, server: Server[Any]) -> None:
        server.extensions[EXTENSION] = {}
        server.add_request_handler("tasks/get", TaskParams, self.get)
        server.add_request_handler("tasks/update", UpdateTaskParams, self.update)
        server.add_request_handler("tasks/cancel", TaskParams, self.cancel)

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        req = await self._own(ctx, params)
        return self.detailed(req)

    async def update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams
    ) -> dict[str, Any]:
        await self._own(ctx, params)
        return {}  # no input is ever outstanding; responses to unknown keys are ignored

    async def cancel(
        self, ctx: ServerRequestContext[Any, Any], params: TaskParams
    ) -> dict[str, Any]:
        req = await self._own(ctx, params)
        # Cooperative: only an undecided request can be withdrawn; an approved or running
        # operation carries on and the task ends with its result.
        await self.tools.approvals.withdraw(principal_of(ctx), req.id, "cancelled by the client")
        return {}

    def detailed(self, req: ApprovalRequest) -> dict[str, Any]:
        """`DetailedTask` for the request's current state."""
        out = task_fields(req, self.tools.settings.task_poll_interval_seconds)
        if req.status in _WORKING:
            return {**out, "status": "working", "statusMessage": _working_message(req)}
        if req.status == "cancelled":
            return {
                **out,
                "status": "cancelled",
                "statusMessage": "withdrawn by the requester; nothing was executed",
            }
        outcome = self._settled(req)
        result = self.render(outcome).model_dump(by_alias=True, mode="json", exclude_none=True)
        message = f"{req.tool}: {req.status}" + (f" ({req.outcome})" if req.outcome else "")
        return {**out, "status": "completed", "statusMessage": message[:500], "result": result}

    def _settled(self, req: ApprovalRequest) -> CallOutcome:
        gate: Gate = req.gate  # type: ignore[assignment]
        reasons = list(req.policy_reasons)
        if req.status in ("denied", "expired"):
            return not_executed(req, gate, reasons)
        outcome = stored_outcome(req, gate, reasons)
        if outcome.result is None and req.status == "failed":  # never ran (re-authorisation)
            outcome.result = {"error": req.outcome or "failed", "approval_id": req.id}
        return outcome

    async def _own(
        self, ctx: ServerRequestContext[Any, Any], params: TaskParams
    ) -> ApprovalRequest:
        if ctx.protocol_version < REVISION:
            raise MCPError(METHOD_NOT_FOUND, "Method not found")
        if not declared(ctx):
            raise MCPError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                "Missing required client capability",
                {"requiredCapabilities": {"extensions": {EXTENSION: {}}}},
            )
        headers = getattr(ctx.request, "headers", None)
        if headers is not None and decode_header_value(headers.get(MCP_NAME_HEADER)) != (
            params.task_id
        ):
            # The extension has clients mirror taskId into Mcp-Name so that load balancers
            # can route by it; a mismatch means an intermediary routed on something else.
            raise MCPError(HEADER_MISMATCH, f"{MCP_NAME_HEADER} header does not match taskId")
        principal = principal_of(ctx)
        try:
            req = await self.tools.approvals.get(principal.tenant, params.task_id)
        except NotFound:
            req = None
        if req is None or req.requester != principal.id:
            raise MCPError(
                INVALID_PARAMS, f"Failed to retrieve task: task {params.task_id!r} not found"
            )
        return req


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    principal = getattr(getattr(ctx.request, "state", None), "principal", None)
    if not isinstance(principal, Principal):  # the endpoint's auth wrapper always sets it
        raise MCPError(-32001, "unauthenticated")
    return principal
