"""Request context middleware: request id, trace span, access metrics."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsgate.telemetry.logging import request_id_var, trace_id_var
from opsgate.telemetry.metrics import Metrics
from opsgate.telemetry.tracing import Tracing

_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


# Bound on the cached metric children (route x method x status); beyond it, look them up.
_MAX_CHILDREN = 1024


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracing.tracer
        # prometheus_client's labels() validates and locks on every call; keep the children.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def _observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        pair = self._children.get(key)
        if pair is None:
            m = self.metrics
            pair = (m.http_requests.labels(*key), m.http_latency.labels(route, method))
            if len(self._children) < _MAX_CHILDREN:
                self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")
        if not _RID.match(rid):
            rid = os.urandom(16).hex()
        status_holder = [500]
        start = time.perf_counter()
        ctx = extract(headers)
        with self.tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}", context=ctx, kind=SpanKind.SERVER
        ) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            rtok = request_id_var.set(rid)
            ttok = trace_id_var.set(trace_id)
            scope.setdefault("state", {})["request_id"] = rid
            scope["state"]["trace_id"] = trace_id

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_holder[0] = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = [
                        *message["headers"],
                        (b"x-request-id", rid.encode()),
                        (b"x-trace-id", trace_id.encode()),
                    ]
                await send(message)

            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                request_id_var.reset(rtok)
                trace_id_var.reset(ttok)
                status = status_holder[0]
                route = _route_template(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attributes(
                    {
                        "http.request.method": scope["method"],
                        "http.route": route,
                        "http.response.status_code": status,
                    }
                )
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self._observe(route, scope["method"], status, time.perf_counter() - start)


def current_trace_id() -> str | None:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else trace_id_var.get()
