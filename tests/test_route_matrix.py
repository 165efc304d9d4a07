"""Role x endpoint x verb matrix over every route the app serves (SECURITY.md).

Routes are discovered from the app itself, so endpoints added later are covered without
editing this file: every route except the public probes needs authentication, and every route
guarded by `require_roles` refuses a principal that holds none of those roles.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from tests.conftest import AppHarness

PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/.well-known/oauth-protected-resource",  # RFC 9728: public by design
}


def _required_roles(route: APIRoute) -> frozenset[str] | None:
    """Roles demanded by a `require_roles` dependency anywhere in the route's tree."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "required_roles", None)
        if roles is not None:
            return frozenset(roles)
        stack.extend(dep.dependencies)
    return None


def _routes(h: AppHarness) -> list[tuple[str, str, BaseRoute]]:
    """(method, concrete path, route) for every route, through included routers."""
    out = []
    for ctx in iter_route_contexts(h.app.routes):
        for m in sorted((ctx.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((m, re.sub(r"\{[^}]+\}", "x", ctx.path), ctx.route))
    return out


async def _call(h: AppHarness, method: str, path: str, headers: dict[str, str]) -> Any:
    kw: dict[str, Any] = {"headers": headers}
    if method in {"POST", "PUT", "PATCH"}:
        kw["json"] = {}
    return await h.client.request(method, path, **kw)


async def test_every_route_needs_authentication(harness: AppHarness) -> None:
    checked = 0
    for method, path, _route in _routes(harness):
        if path in PUBLIC:
            continue
        r = await _call(harness, method, path, {})
        assert r.status_code == 401, (method, path, r.status_code)
        r = await _call(harness, method, path, {"Authorization": "Bearer not-a-real-token"})
        assert r.status_code == 401, (method, path, r.status_code)
        checked += 1
    assert checked >= 3


async def test_role_restricted_routes_refuse_other_roles(harness: AppHarness) -> None:
    rt = harness.runtime
    keys = {}
    for role in ("user", "agent", "auditor", "operator", "approver"):
        issued = await rt.identity.keys.create(
            tenant="default",
            name=f"matrix-{role}",
            kind="service",
            roles=[role],
            scopes=[],
            created_by="test",
            expires_at=None,
        )
        keys[role] = issued.key
    restricted = 0
    for method, path, route in _routes(harness):
        required = _required_roles(route) if isinstance(route, APIRoute) else None
        if required is None:
            continue
        restricted += 1
        for role, key in keys.items():
            r = await _call(harness, method, path, {"Authorization": f"Bearer {key}"})
            if role in required:
                assert r.status_code != 403, (role, method, path)
            else:
                assert r.status_code == 403, (role, method, path, r.status_code)
    assert restricted >= 3  # the keys endpoints at least
