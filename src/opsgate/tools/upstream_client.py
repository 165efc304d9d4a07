"""Links to upstream MCP servers: one long-lived session per upstream behind one small
interface (`UpstreamLink`), so the federated connector does not care about the transport.

- HTTP upstreams: `HttpLink` speaks MCP's Streamable HTTP transport itself (JSON-RPC over a
  pooled aiohttp session). Hand-written rather than the SDK's `streamable_http_client` +
  `ClientSession` because that stack is the cost of a federated call: per message the SDK
  spawns a task group and a task, passes the message through two zero-buffer memory streams
  and a dispatcher, and sends it with httpx2, whose connection pool alone costs more than
  aiohttp's whole request. On a 2-core box that was ~2.8 ms of a ~4.4 ms hop (raw aiohttp
  POST: ~1.6 ms; docs/benchmarks.md, "Tool control plane"). It keeps what the protocol asks of
  a client: the initialize handshake with version negotiation, the session id, the protocol
  version header, JSON and SSE answers (including server requests and resumption on the
  stream), JSON-RPC errors, cancellation of abandoned calls, DELETE on close.
- stdio upstreams: `SdkLink` (opsgate.tools.upstream_stdio), the official SDK client over a
  subprocess (not a hot path).

A JSON-RPC error the upstream answered is raised as `MCPError` (the tool failed, the link is
fine); every other exception means the link failed: the caller drops it (the next call
reconnects, re-lists and re-verifies) and counts a failure for its circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Protocol, TypeVar

import aiohttp
import mcp.types as t
import pydantic_core
from jsonschema import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, MCP_PROTOCOL_VERSION_HEADER, encode_header_value
from mcp_types import methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from referencing import Registry
from referencing.exceptions import Unresolvable

from opsgate import __version__
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.tools.upstream_client")
R = TypeVar("R")

_SESSION_ID = "mcp-session-id"
_LAST_EVENT_ID = "last-event-id"
# Bounds on what one answer may buffer (the SDK's SSE default is 1 MiB; tool results bigger
# than OpsGate's own result limit are cut later anyway).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# SSE resumption: consecutive reconnects that bring no event before the call fails.
_RESUME_ATTEMPTS = 3
_DEFAULT_RETRY_MS = 1000
_CLIENT_INFO = {"name": "opsgate", "version": __version__}


class LinkError(Exception):
    """The link to the upstream failed: not an answer from it."""


class UpstreamHTTPError(LinkError):
    """An HTTP status that carries no JSON-RPC answer (status and the start of the body)."""

    def __init__(self, status: int, body: bytes, detail: str = "") -> None:
        super().__init__(f"upstream answered HTTP {status}{f' ({detail})' if detail else ''}")
        self.status, self.body = status, body


class UpstreamLink(Protocol):
    """One live session with an upstream MCP server."""

    @property
    def alive(self) -> bool: ...

    async def list_tools(self, cursor: str | None) -> t.ListToolsResult: ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> t.CallToolResult: ...

    async def aclose(self) -> None: ...


async def list_all(link: UpstreamLink) -> list[t.Tool]:
    tools: list[t.Tool] = []
    cursor: str | None = None
    for _ in range(100):  # an upstream paginating forever is cut off
        page = await link.list_tools(cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


# --- HTTP ------------------------------------------------------------------------------


class _Sse:
    """An SSE parser (the WHATWG event-stream rules) over response bodies. `last_id` and
    `retry_ms` outlive single events and streams, as the spec's "last event ID" does."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_ms: int | None = None

    async def data(self, body: aiohttp.StreamReader) -> AsyncIterator[bytes]:
        """The data of each dispatched `message` event (events without data are skipped)."""
        pending: list[bytes] = []  # pieces of the current, unterminated line
        data: list[bytes] = []
        event = b""
        size = 0
        async for chunk in body.iter_any():
            start = 0
            while (nl := chunk.find(b"\n", start)) != -1:
                line = b"".join([*pending, chunk[start:nl]]) if pending else chunk[start:nl]
                pending.clear()
                start = nl + 1
                line = line.removesuffix(b"\r")
                if not line:  # a blank line dispatches the event, unless its data is empty
                    if (payload := b"\n".join(data)) and event in (b"", b"message"):
                        yield payload
                    data, event, size = [], b"", 0
                    continue
                name, _, value = line.partition(b":")
                value = value.removeprefix(b" ")
                if name == b"data":
                    data.append(value)
                elif name == b"event":
                    event = value
                elif name == b"id" and b"\0" not in value:
                    self.last_id = value.decode("utf-8", "replace")
                elif name == b"retry" and value.isdigit():
                    self.retry_ms = int(value)
                # other fields, and comments (an empty name), are ignored
            if start < len(chunk):
                pending.append(chunk[start:])
            size += len(chunk)
            if size > MAX_MESSAGE_BYTES:
                raise LinkError(f"an SSE event from the upstream exceeds {MAX_MESSAGE_BYTES} bytes")


class HttpLink:
    """A Streamable HTTP session with one upstream (see the module docstring for why it is
    not the SDK's client). Safe for concurrent calls: each is its own POST on the pool."""

    def __init__(self, url: str, token: str | None, *, connect_s: float, read_s: float) -> None:
        self.url = url
        self._headers = {"accept": "application/json, text/event-stream"}
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=connect_s, sock_read=read_s),
            # Idle connections are dropped before the common 5 s server keep-alive ends, so a
            # call never races the server closing the connection it is sent on.
            connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=4),
            # Kept per link, as the SDK's httpx client did: load balancers may pin a session
            # to a backend by cookie. `unsafe`: operator URLs may be IP addresses.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            trust_env=False,  # the URL is the operator's; no proxy from the environment
        )
        self._next_id = 0
        self._closed = False
        self.protocol_version: str | None = None
        self.session_id: str | None = None
        self._output_schemas: dict[str, dict[str, Any] | None] = {}
        self._validators: dict[str, Validator] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # cancellation notices, stream drains

    @classmethod
    async def connect(
        cls, url: str, token: str | None, *, connect_s: float, read_s: float
    ) -> HttpLink:
        """Open a session: `initialize` (version negotiation), then `notifications/initialized`."""
        link = cls(url, token, connect_s=connect_s, read_s=read_s)
        try:
            await link._initialize()
        except BaseException:
            await link.aclose()
            raise
        return link

    @property
    def alive(self) -> bool:
        return not self._closed

    async def list_tools(self, cursor: str | None) -> t.ListToolsResult:
        raw = await self._request("tools/list", {"cursor": cursor} if cursor else {})
        result = t.ListToolsResult.model_validate(self._surface("tools/list", raw), by_name=False)
        for tool in result.tools:  # to check structured results, as the SDK client does
            if self._output_schemas.get(tool.name) != tool.output_schema:
                self._validators.pop(tool.name, None)
            self._output_schemas[tool.name] = tool.output_schema
        return result

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> t.CallToolResult:
        params = {"name": name, "arguments": arguments}
        raw = await self._request("tools/call", params, name=name)
        result = t.CallToolResult.model_validate(self._surface("tools/call", raw), by_name=False)
        if not result.is_error:
            self._check_structured(name, result)
        return result

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._tasks:  # let cancellation notices go out first (bounded)
                await asyncio.wait(self._tasks, timeout=2)
            if self.session_id:  # the spec's explicit end of a session; 405: not offered
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    headers = self._session_headers()
                    delete = self._http.delete(self.url, headers=headers, allow_redirects=False)
                    async with asyncio.timeout(2), delete:
                        pass
        finally:
            for task in self._tasks:
                task.cancel()
            await self._http.close()

    # --- the wire ----------------------------------------------------------------------

    async def _initialize(self) -> None:
        params = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},  # no sampling, elicitation or roots: the server asks nothing
            "clientInfo": _CLIENT_INFO,
        }
        raw = await self._request("initialize", params)
        init = t.InitializeResult.model_validate(raw, by_name=False)
        if init.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise LinkError(f"unsupported MCP protocol version {init.protocol_version!r}")
        self.protocol_version = init.protocol_version
        await self._notify("notifications/initialized", {})

    def _session_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self.session_id:
            headers[_SESSION_ID] = self.session_id
        if self.protocol_version:
            headers[MCP_PROTOCOL_VERSION_HEADER] = self.protocol_version
        return headers

    async def _post(
        self, message: dict[str, Any], extra: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        if self._http.closed:
            raise LinkError("the link to the upstream is closed")
        headers = self._session_headers() | {"content-type": "application/json"}
        return await self._http.post(
            self.url,
            data=pydantic_core.to_json(message),  # big integers stay exact (as with pydantic)
            headers=headers | extra if extra else headers,
            allow_redirects=False,  # the operator configures the final URL
        )

    async def _notify(self, method: str, params: dict[str, Any]) -> None:
        resp = await self._post({"jsonrpc": "2.0", "method": method, "params": params})
        resp.release()
        if resp.status >= 300:  # as the SDK: a notification's refusal fails nothing
            log.info("upstream refused a notification", method=method, status=resp.status)

    async def _request(
        self, method: str, params: dict[str, Any], name: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        rid = self._next_id
        message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        extra = {MCP_NAME_HEADER: encode_header_value(name)} if name is not None else None
        resp: aiohttp.ClientResponse | None = None
        try:
            resp = await self._post(message, extra)
            await self._check_status(resp, rid)
            if method == "initialize" and (sid := resp.headers.get(_SESSION_ID)):
                self.session_id = sid
            if resp.content_type == "application/json":
                return _answer(_json(await _read(resp, MAX_MESSAGE_BYTES)), rid)
            if resp.content_type == "text/event-stream":
                answer = await self._from_sse(resp, rid)
                resp = self._finish_later(resp)
                return answer
            raise LinkError(f"unexpected content type from the upstream: {resp.content_type}")
        except asyncio.CancelledError:  # timed out, or the caller went away
            if method != "initialize":  # the spec forbids cancelling initialize
                self._background(self._cancelled(rid))
            raise
        finally:
            if resp is not None:  # back to the pool if read to the end, else closed
                resp.release()

    async def _check_status(self, resp: aiohttp.ClientResponse, rid: int) -> None:
        if resp.status < 300 and resp.status != 202:
            return
        if resp.status == 202:
            raise LinkError("the upstream answered a request with 202 Accepted")
        body = await _read(resp, 64 * 1024)
        if resp.status == 404 and self.session_id:
            # The session is gone (the server restarted or expired it); the spec says start
            # a new one, which the next call's reconnect does (re-listing and re-verifying).
            raise UpstreamHTTPError(404, body, "session expired")
        if resp.content_type == "application/json":  # a JSON-RPC error at an HTTP status
            with contextlib.suppress(LinkError):
                message = _json(body)
                if isinstance(message, dict) and isinstance(message.get("error"), dict):
                    _answer(message, rid)  # raises its MCPError
        raise UpstreamHTTPError(resp.status, body)

    async def _from_sse(self, resp: aiohttp.ClientResponse, rid: int) -> dict[str, Any]:
        sse = _Sse()
        found, _ = await self._answer_on_stream(resp, sse, rid)
        attempts = 0
        while found is None:
            # The stream ended without our answer. Resumable only if the server numbered its
            # events (it may close a stream on purpose and expect a GET with Last-Event-ID).
            if sse.last_id is None or attempts >= _RESUME_ATTEMPTS:
                raise LinkError("the upstream's event stream ended without an answer")
            attempts += 1
            await asyncio.sleep((sse.retry_ms or _DEFAULT_RETRY_MS) / 1000)
            headers = self._session_headers() | {_LAST_EVENT_ID: sse.last_id}
            async with self._http.get(self.url, headers=headers, allow_redirects=False) as get:
                if get.status != 200 or get.content_type != "text/event-stream":
                    body = await _read(get, 64 * 1024)
                    raise UpstreamHTTPError(get.status, body, "resuming the event stream")
                found, seen = await self._answer_on_stream(get, sse, rid)
                if seen:
                    attempts = 0
        return found

    async def _answer_on_stream(
        self, resp: aiohttp.ClientResponse, sse: _Sse, rid: int
    ) -> tuple[dict[str, Any] | None, bool]:
        """(the answer to `rid` or None if the stream ended first, whether any event came)."""
        seen = False
        async for data in sse.data(resp.content):
            seen = True
            message = _json(data)
            if not isinstance(message, dict):
                continue
            if "method" not in message and message.get("id") == rid:
                return _answer(message, rid), True
            if "method" in message and "id" in message:
                await self._reply(message)
            # progress, logging and list_changed notifications: the connector uses none
        return None, seen

    async def _reply(self, request: dict[str, Any]) -> None:
        """Answer a server request on the stream: ping, and nothing else (no capabilities)."""
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
        if request["method"] == "ping":
            reply["result"] = {}
        else:
            msg = f"{request['method']} is not supported by this client"
            reply["error"] = {"code": t.METHOD_NOT_FOUND, "message": msg}
        try:
            (await self._post(reply)).release()
        except (aiohttp.ClientError, OSError) as exc:
            log.info("could not answer an upstream request", error=type(exc).__name__)

    async def _cancelled(self, rid: int) -> None:
        """Tell the upstream a call was given up (cancellation in the handshake era)."""
        params = {"requestId": rid, "reason": "cancelled by OpsGate (timeout or client gone)"}
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, LinkError):
            async with asyncio.timeout(2):
                await self._notify("notifications/cancelled", params)

    def _finish_later(self, resp: aiohttp.ClientResponse) -> aiohttp.ClientResponse | None:
        """After the answer, an SSE stream usually just ends; reading it to its end returns
        the connection to the pool (a new connection per call costs more than the call).
        Not waited for: a server may keep the stream open. None: the caller lets go."""
        if resp.content.at_eof():
            return resp

        async def drain() -> None:
            try:
                async with asyncio.timeout(1):
                    while await resp.content.readany():
                        pass
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass  # closed by release() below
            finally:
                resp.release()

        self._background(drain())
        return None

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        if self._http.closed:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _surface(self, method: str, raw: dict[str, Any]) -> dict[str, Any]:
        """The result as the negotiated protocol version defines it (a later revision's
        fields dropped), validated against that version's schema."""
        assert self.protocol_version is not None
        return methods.serialize_server_result(method, self.protocol_version, raw)

    def _check_structured(self, name: str, result: t.CallToolResult) -> None:
        """Structured content against the tool's listed output schema (as the SDK client)."""
        schema = self._output_schemas.get(name)
        if schema is None:
            return
        if result.structured_content is None:
            raise LinkError(f"tool {name} has an output schema but returned no structured content")
        try:
            validator = self._validators.get(name)
            if validator is None:
                cls = validator_for(schema)
                cls.check_schema(schema)
                # An empty registry: `$ref`s resolve inside the schema only, never fetched.
                validator = self._validators[name] = cls(schema, registry=Registry())
            validator.validate(result.structured_content)
        except (SchemaError, Unresolvable) as exc:
            raise LinkError(f"tool {name} has an invalid output schema: {exc}") from None
        except ValidationError as exc:
            raise LinkError(f"tool {name} returned structured content off its schema: "
                            f"{exc.message[:200]}") from None  # fmt: skip


async def _read(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body, or LinkError when it is longer than `cap` bytes."""
    if resp.content_length is not None and resp.content_length <= cap:
        return await resp.read()
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise LinkError(f"an answer from the upstream exceeds {cap} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _json(data: bytes) -> Any:
    try:
        return pydantic_core.from_json(data)  # big integers stay exact (orjson makes floats)
    except ValueError:
        raise LinkError("the upstream sent invalid JSON") from None


def _answer(message: Any, rid: int) -> dict[str, Any]:
    """The result of a JSON-RPC response to `rid`; MCPError for an error response."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise LinkError("the upstream answered something other than a JSON-RPC message")
    if isinstance(error := message.get("error"), dict):
        code, text = error.get("code"), error.get("message")
        if not isinstance(code, int) or not isinstance(text, str):
            raise LinkError("the upstream answered a malformed JSON-RPC error")
        raise MCPError(code, text, error.get("data"))
    # An error may carry a null id (rejected before its id was read); a result may not.
    if message.get("id") != rid or not isinstance(result := message.get("result"), dict):
        raise LinkError("the upstream's answer does not match the request")
    return result
