"""OpsGate's MCP endpoint (`/mcp`, Streamable HTTP, official `mcp` SDK).

Agents authenticate with an OpsGate API key or an OIDC token issued for OpsGate; anything else
gets 401 with the protected-resource metadata pointer. The client's credential is used only to
identify the principal and never travels further. `tools/list` shows only what that principal
may call; `tools/call` runs the governed pipeline (opsgate.tools.service). Host and Origin are
checked before this app runs (opsgate.http.guards), which is the DNS-rebinding defence.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import mcp.types as t
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.types import Message, Receive, Scope, Send

from opsgate import __version__
from opsgate.audit.schemas import AuditEventIn
from opsgate.errors import Conflict, Forbidden, NotFound, OpsGateError, ValidationFailed
from opsgate.http.guards import send_error
from opsgate.identity.principal import Principal
from opsgate.telemetry.logging import get_logger
from opsgate.tools import mcp_tasks
from opsgate.tools.held import ApprovalRunner
from opsgate.tools.mcp_tasks import principal_of as _principal
from opsgate.tools.service import CallOutcome, ToolService

INVALID_PARAMS = -32602
# Clients at this revision or later get an `input_required` result (sealed request state)
# while an approval is pending; older ones get a non-error "pending approval" result.
MRTR_REVISION = "2026-07-28"
log = get_logger("opsgate.mcp")


def _text(outcome: CallOutcome) -> str:
    if outcome.status == "pending_approval":
        return (
            f"Held for human approval (gate {outcome.gate}). Approval id: {outcome.approval_id}. "
            "Nothing was executed. Call again with the same arguments and this approval id "
            "in _meta['opsgate/approval_id'] once it is approved."
        )
    if outcome.status == "decision_support":
        return (
            "Not executed: a person must perform this (L3). "
            + orjson.dumps(outcome.result).decode()
        )
    return orjson.dumps(outcome.result).decode()


def outcome_result(outcome: CallOutcome) -> t.CallToolResult:
    """The MCP result of a call's outcome (also a completed task's result)."""
    structured = {k: v for k, v in outcome.__dict__.items() if k != "result"}
    return t.CallToolResult(
        content=[t.TextContent(type="text", text=_text(outcome))],
        structured_content={**structured, "result": outcome.result},
        is_error=outcome.status == "failed",
    )


def _progress_token(params: t.CallToolRequestParams) -> str | int | None:
    meta: dict[str, Any] = dict(params.meta or {})
    token = meta.get("progress_token", meta.get("progressToken"))
    return token if isinstance(token, str | int) else None


def _state_approval_id(params: t.CallToolRequestParams) -> str | None:
    """The approval id inside a (verified, unsealed) request state, if any."""
    if not params.request_state:
        return None
    try:
        state = orjson.loads(params.request_state)
    except orjson.JSONDecodeError:
        return None
    value = state.get("approval_id") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None


STATUS_TOOL = t.Tool(
    name="approvals.status",
    title="Approval status",
    description=(
        "Status of one of your own approval requests (pending, approved, denied, expired, "
        "cancelled, executing, executed, failed) and, once executed, its result."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["approval_id"],
        "properties": {"approval_id": {"type": "string", "maxLength": 36}},
    },
    annotations=t.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
)


async def _approval_status(
    tools: ToolService, principal: Principal, args: dict[str, Any]
) -> t.CallToolResult:
    approval_id = args.get("approval_id")
    if not isinstance(approval_id, str) or set(args) != {"approval_id"}:
        raise MCPError(INVALID_PARAMS, "approvals.status takes exactly {approval_id: string}")
    try:
        req = await tools.approvals.get(principal.tenant, approval_id)
    except NotFound:
        req = None
    if req is None or req.requester != principal.id:  # others' requests do not exist for you
        return t.CallToolResult(
            content=[t.TextContent(type="text", text=f"no approval request {approval_id!r}")],
            is_error=True,
        )
    view = {
        "approval_id": req.id,
        "status": req.status,
        "tool": req.tool,
        "expires_at": req.expires_at.isoformat(),
        "outcome": req.outcome,
        "result": (req.result or {}).get("content"),
    }
    return t.CallToolResult(
        content=[t.TextContent(type="text", text=orjson.dumps(view).decode())],
        structured_content=view,
    )


def build_mcp_server(
    tools: ToolService, runner: ApprovalRunner | None = None, state_key: bytes | None = None
) -> Server[Any]:
    settings = tools.settings

    async def hold(
        ctx: ServerRequestContext[Any],
        params: t.CallToolRequestParams,
        principal: Principal,
        outcome: CallOutcome,
    ) -> CallOutcome:
        """Hold a call that needs approval, streaming progress if the client asked for it."""
        if runner is None:
            return outcome
        token = _progress_token(params)
        hold_s = settings.approval_hold_seconds

        async def tick(elapsed: float) -> None:
            if token is not None:
                await ctx.session.send_progress_notification(
                    token,
                    progress=round(elapsed, 1),
                    total=hold_s,
                    message=f"waiting for human approval {outcome.approval_id}",
                    related_request_id=str(ctx.request_id),  # rides this call's own stream
                )

        return await runner.hold(
            principal,
            params.arguments or {},
            outcome,
            hold_s,
            tick=tick,
            tick_every=settings.progress_interval_seconds,
        )

    async def list_tools(
        ctx: ServerRequestContext[Any], params: t.PaginatedRequestParams | None
    ) -> t.ListToolsResult:
        specs = await tools.visible(_principal(ctx))
        return t.ListToolsResult(
            tools=[
                t.Tool(
                    name=s.name,
                    title=s.title,
                    description=s.description,
                    input_schema=s.input_schema,
                    annotations=t.ToolAnnotations(
                        title=s.title,
                        read_only_hint=s.risk == "read",
                        destructive_hint=s.risk == "destructive",
                        idempotent_hint=s.idempotent or s.risk == "read",
                        open_world_hint=True,
                    ),
                )
                for s in specs
            ]
            + [STATUS_TOOL]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any], params: t.CallToolRequestParams
    ) -> t.CallToolResult:
        principal = _principal(ctx)
        if params.name == STATUS_TOOL.name:
            return await _approval_status(tools, principal, params.arguments or {})
        meta: dict[str, Any] = dict(params.meta or {})
        approval_id = _state_approval_id(params) or meta.get("opsgate/approval_id")
        try:
            outcome = await tools.call(
                principal,
                params.name,
                params.arguments or {},
                rationale=str(meta.get("opsgate/rationale", ""))[:4000],
                approval_id=approval_id if isinstance(approval_id, str) else None,
            )
            if outcome.status == "pending_approval" and outcome.approval_id:
                if mcp_tasks.declared(ctx):
                    # A task at once: the client polls tasks/get instead of being held.
                    req = await tools.approvals.get(principal.tenant, outcome.approval_id)
                    return mcp_tasks.created(req, settings.task_poll_interval_seconds)  # type: ignore[return-value]
                outcome = await hold(ctx, params, principal, outcome)
        except NotFound as exc:
            raise MCPError(INVALID_PARAMS, exc.detail) from None
        except ValidationFailed as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
            return t.CallToolResult(
                content=[t.TextContent(type="text", text=f"{exc.detail}: {detail}")], is_error=True
            )
        except (Forbidden, Conflict, OpsGateError) as exc:
            return t.CallToolResult(
                content=[t.TextContent(type="text", text=exc.detail)], is_error=True
            )
        if (
            outcome.status == "pending_approval"
            and state_key is not None
            and ctx.protocol_version >= MRTR_REVISION
        ):
            # The SDK's boundary seals this (AES-GCM, bound to principal and request).
            return t.InputRequiredResult(  # type: ignore[return-value]
                request_state=orjson.dumps({"approval_id": outcome.approval_id}).decode()
            )
        return outcome_result(outcome)

    server: Server[Any] = Server(
        "opsgate", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool
    )
    mcp_tasks.TaskViews(tools, outcome_result).install(server)
    if state_key is not None:

        def bind(ctx: ServerRequestContext[Any, Any]) -> str | None:
            principal = getattr(getattr(ctx.request, "state", None), "principal", None)
            return principal.id if isinstance(principal, Principal) else None

        security = RequestStateSecurity(
            keys=[hashlib.sha256(b"opsgate-mcp-request-state" + state_key).digest()],
            ttl=settings.approval_ttl_seconds,
            bind_principal=bind,
            audience="opsgate",
        )
        server.middleware.append(_StateAlarm(tools))
        server.middleware.append(RequestStateBoundary(security, default_audience="opsgate"))
    return server


class _StateAlarm:
    """Forged, tampered, replayed-elsewhere or expired request state: refused and alerted."""

    def __init__(self, tools: ToolService) -> None:
        self.tools = tools

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        try:
            return await call_next(ctx)
        except MCPError as exc:
            if ctx.params is None or ctx.params.get("requestState") is None:
                raise
            principal = getattr(getattr(ctx.request, "state", None), "principal", None)
            tenant = principal.tenant if isinstance(principal, Principal) else "default"
            actor = principal.id if isinstance(principal, Principal) else "unknown"
            log.warning("rejected MCP request state", actor=actor, method=ctx.method)
            await self.tools.audit.emit(
                AuditEventIn(
                    tenant=tenant,
                    actor=actor,
                    action="mcp.request_state.rejected",
                    resource="mcp",
                    outcome="denied",
                    reason="request state failed verification (forged, tampered or expired)",
                    payload={"method": ctx.method, "error": exc.error.message[:200]},
                )
            )
            await self.tools.bus.publish(
                "alert.raised",
                {"tenant": tenant, "kind": "mcp_request_state_rejected", "actor": actor},
            )
            raise


class McpEndpoint:
    """ASGI app for `/mcp`: authenticates, then hands over to the SDK's session manager."""

    def __init__(
        self,
        tools: ToolService,
        authenticate: Any,
        resource_metadata_url: str,
        runner: ApprovalRunner | None = None,
        state_key: bytes | None = None,
    ) -> None:
        self.server = build_mcp_server(tools, runner, state_key)
        # A request that asks for progress (a progressToken) is answered as an SSE stream, so a
        # held call can send progress notifications before its result; everything else gets a
        # plain JSON response, which costs the SDK ~2 ms less per call.
        self.manager = StreamableHTTPSessionManager(
            self.server, stateless=True, json_response=False
        )
        self.json_manager = StreamableHTTPSessionManager(
            self.server, stateless=True, json_response=True
        )
        self.authenticate = authenticate
        self.metadata_url = resource_metadata_url

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run(), self.json_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A field value excludes surrounding whitespace (RFC 9110 5.5), but uvicorn's httptools
        # parser keeps trailing whitespace, which the SDK's Mcp-Name/Mcp-Method checks would
        # reject as a mismatch (conformance: sep-2243-server-accepts-whitespace-header-value).
        scope["headers"] = [(k, v.strip(b" \t")) for k, v in scope["headers"]]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await self.authenticate(headers, scope.get("client"))
        except OpsGateError as err:
            if err.status == 401:
                err.headers = {
                    "WWW-Authenticate": f'Bearer resource_metadata="{self.metadata_url}"'
                }
            await send_error(scope, send, err)
            return
        scope.setdefault("state", {})["principal"] = principal
        if scope.get("method") != "POST":
            await self.manager.handle_request(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        manager = self.manager if b"progressToken" in body else self.json_manager
        await manager.handle_request(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the request body (the body-limit middleware bounds it) and replay it once."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", receive  # disconnected: let the SDK see it
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def make_authenticator(identity: Any) -> Any:
    """Headers -> Principal with OpsGate's identity service (API keys, OIDC for OpsGate)."""
    from opsgate.identity.deps import credential_from_headers

    async def authenticate(headers: dict[str, str], client: Any) -> Principal:
        credential = credential_from_headers(headers)
        source = client[0] if client else ""
        principal: Principal = await identity.authenticate(credential, source=source)
        return principal

    return authenticate
