"""The model-call lane: POSTs to the gateway's model-call paths skip the framework's generic
per-request layers.

Nearly all of a deployment's traffic is model calls. Such a request still runs through the
same edge middleware as every other request (request id and server span, Host/Origin guard,
body limit) and its errors through the app's own exception handlers, but not through the
layers FastAPI and Starlette put around every request for features these three endpoints do
not use: server-error, exception, body-limit, telemetry and exit-stack middleware, the router
and `request_response` (about 7% of the gateway's CPU at load, docs/benchmarks.md). Other
methods on these paths (405) and every other path take the ordinary stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Handler = Callable[[Request, Exception], Any]


def find_handler(handlers: Mapping[Any, Handler], exc: Exception) -> Handler | None:
    """The handler registered for the nearest class of `exc` (as Starlette looks it up)."""
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            return handler
    return None


class ModelCallLane:
    def __init__(
        self,
        routes: Sequence[Route],
        edge: Callable[[ASGIApp], ASGIApp],
        handlers: Mapping[Any, Handler],
    ) -> None:
        self._routes = {r.path: r for r in routes}
        # Read on each error, not copied: handlers may be registered after the lane is built.
        self._handlers = handlers
        self._chain = edge(self._dispatch)

    def handles(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self._routes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._chain(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes[scope["path"]]
        scope["route"] = route  # the route template of the request metrics and span name
        request = Request(scope, receive, send)
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            response: Response = await route.endpoint(request)
            await response(scope, receive, sender)
        except Exception as exc:
            # As Starlette: a handled error becomes its handler's response unless the response
            # has started; an unhandled one (the `Exception` handler) is answered, then raised
            # so the server logs it and drops the connection.
            handler = find_handler(self._handlers, exc)
            if handler is None or started:
                raise
            answer: Response = await handler(request, exc)
            await answer(scope, receive, sender)
            if handler is self._handlers.get(Exception):
                raise
