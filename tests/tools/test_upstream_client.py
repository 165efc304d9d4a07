"""The Streamable HTTP link to upstream MCP servers (opsgate.tools.upstream_client): against
the official SDK server (tests/fakes/mcp_upstream.py) answering in JSON and as SSE, and
against a small wire-level server for what the SDK server never does (an old protocol
version, resumed event streams, expired sessions, bare HTTP errors, oversized answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ZONES_FILE, load_zones
from opsgate.tools.connectors.base import CallContext
from opsgate.tools.federation import Discovered, FederatedConnector, UpstreamTool
from opsgate.tools.federation_settings import UpstreamSpec
from opsgate.tools.upstream_client import HttpLink, LinkError, UpstreamHTTPError, list_all
from tests.fakes.mcp_upstream import UpstreamState, serve_asgi, serve_http


async def _link(url: str, token: str | None = "tok") -> HttpLink:
    return await HttpLink.connect(url, token, connect_s=5, read_s=10)


# --- the SDK server ---------------------------------------------------------------------


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
async def test_sdk_server_session_calls_and_close(json_response: bool) -> None:
    state = UpstreamState()
    async with serve_http(state, json_response=json_response) as url:
        link = await _link(url)
        try:
            assert link.protocol_version == "2025-11-25" and link.session_id
            names = {tool.name for tool in await list_all(link)}
            assert {"echo", "add", "chatty"} <= names
            echo = await link.call_tool("echo", {"text": "hi"})
            assert echo.content[0].text == "hi" and not echo.is_error  # type: ignore[union-attr]
            add = await link.call_tool("add", {"a": 2, "b": 2**70})  # exact beyond 64 bits
            assert add.structured_content == {"sum": 2 + 2**70}
            fail = await link.call_tool("fail", {})
            assert fail.is_error
            calls = await asyncio.gather(
                *(link.call_tool("echo", {"text": str(i)}) for i in range(20))
            )
            assert [c.content[0].text for c in calls] == [str(i) for i in range(20)]  # type: ignore[union-attr]
            if not json_response:  # a log notification and a ping request on the call's stream
                chatty = await link.call_tool("chatty", {})
                assert chatty.content[0].text == "pinged"  # type: ignore[union-attr]
            for i in range(3):  # pooled connections are reused, after SSE streams too
                await asyncio.sleep(0.05)  # the stream's end is read after the answer returns
                await link.call_tool("echo", {"text": str(i)})
            assert set(state.peers[-3:]) <= set(state.peers[:-3])
        finally:
            await link.aclose()
        assert not link.alive
    methods = [m for m, _ in state.http]
    assert methods[-1] == "DELETE"  # the session was ended
    sid = link.session_id
    after_init = state.http[1:]  # every request after initialize carries the session
    assert all(h.get("mcp-session-id") == sid for _, h in after_init)
    assert all(h.get("mcp-protocol-version") == "2025-11-25" for _, h in after_init)
    assert set(state.authorization) == {"Bearer tok"}


# --- a wire-level server ----------------------------------------------------------------


class Wire:
    """Speaks just enough Streamable HTTP, with one behaviour per tool name."""

    def __init__(self, version: str = "2025-06-18") -> None:
        self.version = version
        self.seen: list[tuple[str, str, dict[str, Any]]] = []  # (HTTP method, rpc, headers)
        self.posted: list[dict[str, Any]] = []
        self.sessions = {"s-1"}

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/mcp", self.handle, methods=["POST", "GET", "DELETE"])])

    async def handle(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.startswith(("mcp-", "last-"))}
        if request.method != "POST":
            self.seen.append((request.method, "", headers))
            if request.method == "GET" and request.headers.get("last-event-id") == "e1":
                return _sse(b"id: e2\ndata: " + _result(2, _text("resumed")) + b"\n\n")
            return Response(status_code=405)
        msg = orjson.loads(await request.body())
        self.posted.append(msg)
        self.seen.append(("POST", msg.get("method", "reply"), headers))
        if msg.get("method") == "initialize":
            init = {"protocolVersion": self.version, "capabilities": {"tools": {}},
                    "serverInfo": {"name": "wire", "version": "1"}}  # fmt: skip
            return JSONResponse(_msg(msg["id"], init), headers={"mcp-session-id": "s-1"})
        if request.headers.get("mcp-session-id") not in self.sessions:
            return JSONResponse(_error(None, -32600, "Session not found"), status_code=404)
        if "method" not in msg or msg["method"].startswith("notifications/"):
            return Response(status_code=202)
        if msg["method"] == "tools/list":
            names = [n.removeprefix("tool_") for n in dir(self) if n.startswith("tool_")]
            tools = [{"name": n, "inputSchema": {"type": "object"}} for n in names]
            # `ttlMs` is a 2026-07-28 field (and invalid there): not part of older versions
            return JSONResponse(_msg(msg["id"], {"tools": tools, "ttlMs": -5}))
        name = msg["params"]["name"]
        return await getattr(self, f"tool_{name}")(msg)

    async def tool_echo(self, msg: dict[str, Any]) -> Response:
        return JSONResponse(_msg(msg["id"], _text("echo")))

    async def tool_resume(self, msg: dict[str, Any]) -> Response:
        # A priming event with an id, then the server closes the stream on purpose.
        return _sse(b": hello\nretry: 10\nid: e1\ndata:\n\n")

    async def tool_ping_first(self, msg: dict[str, Any]) -> Response:
        ping = orjson.dumps({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"})
        sample = orjson.dumps({"jsonrpc": "2.0", "id": "srv-2", "method": "sampling/createMessage"})
        answer = _result(msg["id"], _text("after ping"))
        # CRLF line ends and a data field split over two lines, as SSE allows.
        body = b"event: message\r\ndata: " + ping + b"\r\n\r\n" + b"data: " + sample + b"\n\n"
        head, sep, tail = answer.partition(b',"result"')  # a line break is JSON whitespace
        return _sse(body + b"data: " + head + b"\ndata: " + sep + tail + b"\n\n")

    async def tool_rpc_error(self, msg: dict[str, Any]) -> Response:
        return JSONResponse(_error(msg["id"], -32602, "bad arguments"), status_code=400)

    async def tool_server_error(self, msg: dict[str, Any]) -> Response:
        return Response("oops", status_code=503)

    async def tool_expire(self, msg: dict[str, Any]) -> Response:
        self.sessions.clear()
        return JSONResponse(_error(msg["id"], -32600, "Session not found"), status_code=404)

    async def tool_slow(self, msg: dict[str, Any]) -> Response:
        await asyncio.sleep(3)
        return JSONResponse(_msg(msg["id"], _text("late")))

    async def tool_huge(self, msg: dict[str, Any]) -> Response:
        return JSONResponse(_msg(msg["id"], _text("x" * (5 * 1024 * 1024))))

    async def tool_wrong_id(self, msg: dict[str, Any]) -> Response:
        return JSONResponse(_msg(msg["id"] + 100, _text("not yours")))


def _text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}]}


def _msg(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _result(rid: Any, result: dict[str, Any]) -> bytes:
    return orjson.dumps(_msg(rid, result))


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def _sse(body: bytes) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 7):  # small pieces: events split across reads
            yield body[i : i + 7]

    return StreamingResponse(chunks(), media_type="text/event-stream")


@pytest.fixture
async def wire() -> AsyncIterator[tuple[Wire, str]]:
    server = Wire()
    async with serve_asgi(server.app()) as base:
        yield server, f"{base}/mcp"


async def _with(url: str, fn: Callable[[HttpLink], Any]) -> Any:
    link = await _link(url)
    try:
        return await fn(link)
    finally:
        await link.aclose()


async def test_older_version_negotiated_and_later_fields_dropped(wire: tuple[Wire, str]) -> None:
    server, url = wire

    async def check(link: HttpLink) -> None:
        assert link.protocol_version == "2025-06-18"  # the server's counter-offer
        tools = await list_all(link)
        assert {"echo", "resume", "slow"} <= {tool.name for tool in tools}
        assert (await link.call_tool("echo", {})).content[0].text == "echo"  # type: ignore[union-attr]

    await _with(url, check)
    init = server.posted[0]
    assert init["params"]["protocolVersion"] == "2025-11-25"
    assert init["params"]["clientInfo"]["name"] == "opsgate"
    assert server.posted[1]["method"] == "notifications/initialized"
    call = next(h for m, rpc, h in server.seen if rpc == "tools/call")
    assert call["mcp-protocol-version"] == "2025-06-18" and call["mcp-name"] == "echo"


async def test_unsupported_version_refused() -> None:
    server = Wire(version="1999-01-01")
    async with serve_asgi(server.app()) as base:
        with pytest.raises(LinkError, match="unsupported MCP protocol version"):
            await _link(f"{base}/mcp")


async def test_sse_resumed_with_last_event_id(wire: tuple[Wire, str]) -> None:
    server, url = wire
    result = await _with(url, lambda link: link.call_tool("resume", {}))
    assert result.content[0].text == "resumed"
    get = next(h for m, _, h in server.seen if m == "GET")
    assert get["last-event-id"] == "e1" and get["mcp-session-id"] == "s-1"


async def test_server_requests_on_the_stream_are_answered(wire: tuple[Wire, str]) -> None:
    server, url = wire
    result = await _with(url, lambda link: link.call_tool("ping_first", {}))
    assert result.content[0].text == "after ping"
    replies = {m["id"]: m for m in server.posted if "method" not in m}
    assert replies["srv-1"]["result"] == {}
    assert replies["srv-2"]["error"]["code"] == -32601  # no sampling capability


async def test_errors(wire: tuple[Wire, str]) -> None:
    _, url = wire
    link = await _link(url)
    try:
        with pytest.raises(MCPError) as answered:  # a JSON-RPC error at HTTP 400: an answer
            await link.call_tool("rpc_error", {})
        assert answered.value.code == -32602 and link.alive
        with pytest.raises(UpstreamHTTPError) as http:
            await link.call_tool("server_error", {})
        assert http.value.status == 503 and http.value.body == b"oops"
        with pytest.raises(LinkError, match="exceeds"):
            await link.call_tool("huge", {})
        with pytest.raises(LinkError, match="does not match"):
            await link.call_tool("wrong_id", {})
        with pytest.raises(UpstreamHTTPError, match="session expired"):
            await link.call_tool("expire", {})
    finally:
        await link.aclose()


async def test_abandoned_call_is_cancelled_upstream(wire: tuple[Wire, str]) -> None:
    server, url = wire
    link = await _link(url)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await link.call_tool("slow", {})
    await link.aclose()  # waits for the cancellation notice, then ends the session
    slow = next(m for m in server.posted if m.get("params", {}).get("name") == "slow")
    cancel = next(m for m in server.posted if m.get("method") == "notifications/cancelled")
    assert cancel["params"]["requestId"] == slow["id"]
    assert server.seen[-1][0] == "DELETE"


# --- through the federated connector ------------------------------------------------------


async def _trust(c: FederatedConnector, found: list[Discovered]) -> list[UpstreamTool]:
    return [UpstreamTool(d, "enabled" if d.spec else "rejected", d.reject) for d in found]


async def _secret(ref: str) -> str:
    return "tok"


def _connector(url: str) -> FederatedConnector:
    spec = UpstreamSpec.model_validate(
        {"name": "wire", "transport": "http", "url": url, "credential": "secret://tok",
         "zone": "monitoring", "process_area": "health-checks", "risk": "read", "gate": "L0"}
    )  # fmt: skip
    return FederatedConnector(spec, load_zones(ZONES_FILE), _secret, verify=_trust)


def _ctx() -> CallContext:
    p = Principal(id="key:agent", kind="agent", tenant="default", roles=frozenset({"agent"}))
    return CallContext(p, "default", _secret)


async def test_connector_link_failures_and_answers(wire: tuple[Wire, str]) -> None:
    server, url = wire
    c = _connector(url)
    await c.refresh()
    try:
        answered = await c.call("wire.rpc_error", {}, _ctx())  # the upstream answered
        assert answered.is_error and answered.meta["target_failed"] is False
        assert "bad arguments" in answered.content["error"] and not c.failed

        down = await c.call("wire.server_error", {}, _ctx())  # counts for the breaker
        assert down.is_error and down.meta["target_failed"] is True
        assert "HTTP 503" in down.content["error"] and (await c.status()).state == "failed"
        inits = sum(1 for m in server.posted if m.get("method") == "initialize")
        assert (await c.call("wire.echo", {}, _ctx())).content == {"text": "echo"}  # reconnected
        assert sum(1 for m in server.posted if m.get("method") == "initialize") == inits + 1

        gone = await c.call("wire.expire", {}, _ctx())
        assert gone.meta["target_failed"] is True and "session expired" in gone.content["error"]
        server.sessions.add("s-1")  # the next initialize starts a new session
        assert (await c.call("wire.echo", {}, _ctx())).content == {"text": "echo"}
    finally:
        await c.aclose()
