"""`create_app(settings)`: wiring only, no work at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from opsgate import __version__, health
from opsgate.http.context import RequestContextMiddleware
from opsgate.http.guards import BodyLimit, HostOriginGuard
from opsgate.http.handlers import install_handlers
from opsgate.http.lane import ModelCallLane
from opsgate.runtime import Runtime
from opsgate.settings import Settings
from opsgate.telemetry.gc import GcPauses, settle_heap
from opsgate.telemetry.logging import configure_logging, get_logger
from opsgate.telemetry.metrics import Metrics
from opsgate.telemetry.tracing import Tracing
from opsgate.tools.mcp_server import McpEndpoint, make_authenticator

log = get_logger("opsgate.app")


def _operation_id(route: APIRoute) -> str:
    # Stable ids: the endpoint function's name, unique across the app (tested).
    return route.name


def allowed_hosts(settings: Settings) -> set[str]:
    hosts = set(settings.server.allowed_hosts)
    if not hosts:
        hosts = {"localhost", "127.0.0.1", "[::1]", "testserver"}
        if settings.server.host not in {"0.0.0.0", "::"}:  # noqa: S104 - comparison only
            hosts.add(settings.server.host)
    if settings.server.public_url:
        netloc = urlsplit(settings.server.public_url).hostname
        if netloc:
            hosts.add(netloc)
    return hosts


class OpsGateApp(FastAPI):
    """FastAPI, with the model-call lane in front (opsgate.http.lane)."""

    lane: ModelCallLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        if lane is not None and lane.handles(scope):
            scope["app"] = self
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    configure_logging(settings.telemetry)
    # Metrics and tracing exist before the lifespan so middleware can hold them.
    metrics = Metrics()
    tracing = Tracing(settings.telemetry)
    gc_pauses = GcPauses(metrics.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await Runtime.start(settings, metrics=metrics, tracing=tracing)
        app.state.runtime = rt
        mcp = McpEndpoint(
            rt.tools,
            make_authenticator(rt.identity),
            _resource_metadata_url(settings),
            runner=rt.held,
            state_key=rt.secret_key,
        )
        app.state.mcp = mcp
        log.info("opsgate started", mode=settings.mode, database=rt.db.engine.dialect.name)
        gc_pauses.install()
        try:
            async with mcp.running():
                settle_heap()
                yield
        finally:
            gc_pauses.remove()
            rt.draining = True
            await rt.close()
            log.info("opsgate stopped")

    app = OpsGateApp(
        title="OpsGate",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url="/docs",
        redoc_url=None,
    )
    install_handlers(app)
    app.include_router(health.router)
    app.router.routes.append(Route("/mcp", endpoint=_McpRoute(app)))
    for router in _domain_routers():
        app.include_router(router)
    model_calls = _model_call_routes()
    # Still in the route list: other methods on these paths get the ordinary 405.
    app.router.routes[:0] = model_calls

    # The edge middleware, outermost first: context (ids, spans) wraps the guards, which wrap
    # the app. Every request passes through it, model calls included.
    edge: list[tuple[Any, dict[str, Any]]] = [
        (RequestContextMiddleware, {"metrics": metrics, "tracing": tracing}),
        (
            HostOriginGuard,
            {
                "allowed_hosts": allowed_hosts(settings),
                "allowed_origins": set(settings.server.allowed_origins),
            },
        ),
        (BodyLimit, {"max_bytes": settings.server.max_body_bytes}),
    ]
    for cls, kwargs in reversed(edge):
        app.add_middleware(cls, **kwargs)

    def wrap(inner: ASGIApp) -> ASGIApp:
        for cls, kwargs in reversed(edge):
            inner = cls(inner, **kwargs)
        return inner

    app.lane = ModelCallLane(model_calls, wrap, app.exception_handlers)
    return app


class _McpRoute:
    """`/mcp` dispatches to the endpoint built in the lifespan (it needs the runtime)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app.state.mcp(scope, receive, send)


def _resource_metadata_url(settings: Settings) -> str:
    base = settings.server.public_url or f"http://{settings.server.host}:{settings.server.port}"
    return base.rstrip("/") + "/.well-known/oauth-protected-resource"


def _model_call_routes() -> list[Route]:
    """The gateway's model-call endpoints: nearly all traffic, so matched first."""
    from opsgate.gateway.api import model_call_routes

    return list(model_call_routes())


def _domain_routers() -> list[APIRouter]:
    """Each domain's router; imported here so importing opsgate.app stays cheap."""
    from opsgate.approvals.api import router as approvals_router
    from opsgate.approvals.slack_api import router as slack_router
    from opsgate.audit.api import router as audit_router
    from opsgate.gateway.api import router as gateway_router
    from opsgate.guard.api import router as guard_router
    from opsgate.identity.api import router as identity_router
    from opsgate.policy.api import router as policy_router
    from opsgate.tools.api import router as tools_router
    from opsgate.tools.federation_api import router as upstreams_router
    from opsgate.vault.api import router as vault_router

    routers: list[APIRouter] = [
        identity_router,
        audit_router,
        vault_router,
        policy_router,
        approvals_router,
        slack_router,
        tools_router,
        upstreams_router,
    ]
    routers.append(gateway_router)
    routers.append(guard_router)
    from opsgate.gateway.killswitch.api import router as killswitch_router
    from opsgate.gateway.usage.api import router as usage_router

    routers += [killswitch_router, usage_router]
    return routers
