"""OpsGate's MCP endpoint (`/mcp`, Streamable HTTP, official `mcp` SDK).

Agents authenticate with an OpsGate API key or an OIDC token issued for OpsGate; anything else
gets 401 with the protected-resource metadata pointer. The client's credential is used only to
identify the principal and never travels further. `tools/list` shows only what that principal
may call; `tools/call` runs the governed pipeline (opsgate.tools.service). Host and Origin are
checked before this app runs (opsgate.http.guards), which is the DNS-rebinding defence.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import mcp.types as t
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.types import Receive, Scope, Send

from opsgate import __version__
from opsgate.errors import Conflict, Forbidden, NotFound, OpsGateError, ValidationFailed
from opsgate.http.guards import send_error
from opsgate.identity.principal import Principal
from opsgate.tools.service import CallOutcome, ToolService

INVALID_PARAMS = -32602


def _principal(ctx: ServerRequestContext[Any]) -> Principal:
    request = ctx.request
    principal = getattr(getattr(request, "state", None), "principal", None)
    if not isinstance(principal, Principal):  # the auth wrapper always sets it
        raise MCPError(-32001, "unauthenticated")
    return principal


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


def build_mcp_server(tools: ToolService) -> Server[Any]:
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
        )

    async def call_tool(
        ctx: ServerRequestContext[Any], params: t.CallToolRequestParams
    ) -> t.CallToolResult:
        principal = _principal(ctx)
        meta: dict[str, Any] = dict(params.meta or {})
        approval_id = meta.get("opsgate/approval_id")
        try:
            outcome = await tools.call(
                principal,
                params.name,
                params.arguments or {},
                rationale=str(meta.get("opsgate/rationale", ""))[:4000],
                approval_id=approval_id if isinstance(approval_id, str) else None,
            )
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
        structured = {k: v for k, v in outcome.__dict__.items() if k != "result"}
        return t.CallToolResult(
            content=[t.TextContent(type="text", text=_text(outcome))],
            structured_content={**structured, "result": outcome.result},
            is_error=outcome.status == "failed",
        )

    return Server("opsgate", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


class McpEndpoint:
    """ASGI app for `/mcp`: authenticates, then hands over to the SDK's session manager."""

    def __init__(self, tools: ToolService, authenticate: Any, resource_metadata_url: str) -> None:
        self.server = build_mcp_server(tools)
        self.manager = StreamableHTTPSessionManager(self.server, stateless=True, json_response=True)
        self.authenticate = authenticate
        self.metadata_url = resource_metadata_url

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        await self.manager.handle_request(scope, receive, send)


def make_authenticator(identity: Any) -> Any:
    """Headers -> Principal with OpsGate's identity service (API keys, OIDC for OpsGate)."""
    from opsgate.identity.deps import credential_from_headers

    async def authenticate(headers: dict[str, str], client: Any) -> Principal:
        credential = credential_from_headers(headers)
        source = client[0] if client else ""
        principal: Principal = await identity.authenticate(credential, source=source)
        return principal

    return authenticate
