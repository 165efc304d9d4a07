"""Edge guards: Host/Origin allow-lists (DNS rebinding) and the request body size cap."""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsgate.errors import Forbidden, OpsGateError, PayloadTooLarge, openai_body, problem_body

# Liveness/readiness and metrics are probed by orchestrators by IP; they reveal nothing.
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_error(scope: Scope, send: Send, err: OpsGateError) -> None:
    """Write an error response from middleware, in the shape its path uses."""
    path: str = scope.get("path", "")
    if path.startswith("/v1/"):
        body = openai_body(err)
        ctype = b"application/json"
    else:
        body = problem_body(err, path, scope.get("state", {}).get("trace_id"))
        ctype = b"application/problem+json"
    payload = orjson.dumps(body)
    headers = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _host_only(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostOriginGuard:
    """Refuse requests whose Host is not ours, or whose browser Origin is not allowed."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: set[str], allowed_origins: set[str]) -> None:
        self.app = app
        self.hosts = {_host_only(h) for h in allowed_hosts}
        self.origins = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS or "*" in self.hosts:
            await self.app(scope, receive, send)
            return
        host = origin = ""
        for k, v in scope["headers"]:
            if k == b"host":
                host = v.decode("latin-1")
            elif k == b"origin":
                origin = v.decode("latin-1")
        if _host_only(host) not in self.hosts:
            await send_error(scope, send, Forbidden("Host header not allowed", code="bad_host"))
            return
        if origin and origin.lower() != "null":
            o = origin.rstrip("/").lower()
            same = urlsplit(o).netloc == host.lower()
            if not same and o not in self.origins:
                await send_error(scope, send, Forbidden("Origin not allowed", code="bad_origin"))
                return
        elif origin.lower() == "null":
            await send_error(scope, send, Forbidden("Origin not allowed", code="bad_origin"))
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for bodies over the limit, whether declared by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = self.max + 1
                if declared > self.max:
                    await send_error(scope, send, PayloadTooLarge(f"limit is {self.max} bytes"))
                    return
        seen = 0
        started = rejected = False

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max:
                    # Answer 413 now and tell the app the client went away, so it stops
                    # reading; whatever it tries to send afterwards is dropped.
                    rejected = True
                    if not started:
                        await send_error(scope, send, PayloadTooLarge(f"limit is {self.max} bytes"))
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise
