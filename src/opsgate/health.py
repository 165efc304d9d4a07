"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from opsgate import __version__
from opsgate.deps import RuntimeDep
from opsgate.errors import NotFound

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", operation_id="readyz")
async def readyz(rt: RuntimeDep) -> Response:
    checks = await rt.ready()
    ok = not rt.draining and all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ok else "unavailable", "draining": rt.draining, "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", operation_id="metrics", include_in_schema=False)
async def metrics(request: Request, rt: RuntimeDep) -> Response:
    if not rt.settings.telemetry.metrics_enabled:
        raise NotFound("metrics are disabled (telemetry.metrics_enabled)")
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/.well-known/oauth-protected-resource", operation_id="oauth_protected_resource")
async def oauth_protected_resource(rt: RuntimeDep) -> dict[str, Any]:
    """RFC 9728 metadata for the MCP endpoint: which issuers' tokens OpsGate accepts."""
    s = rt.settings
    base = s.server.public_url or f"http://{s.server.host}:{s.server.port}"
    return {
        "resource": base.rstrip("/") + "/mcp",
        "authorization_servers": [i.issuer for i in s.identity.oidc],
        "bearer_methods_supported": ["header"],
        "resource_name": "OpsGate",
    }
