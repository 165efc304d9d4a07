"""Request context middleware: request id, trace span, access metrics."""

from __future__ import annotations

import re
import time
import uuid

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


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracing.tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")
        if not _RID.match(rid):
            rid = uuid.uuid4().hex
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
                span.set_attribute("http.request.method", scope["method"])
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
                self.metrics.http_latency.labels(route, scope["method"]).observe(
                    time.perf_counter() - start
                )


def current_trace_id() -> str | None:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else trace_id_var.get()
