"""Authentication dependencies for every domain's api.py."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from opsgate.deps import RuntimeDep
from opsgate.errors import Forbidden, Unauthenticated
from opsgate.identity.principal import Principal

BUILTIN_ROLES = ("admin", "operator", "approver", "auditor", "user", "agent")


def credential_from(request: Request) -> str:
    """The presented credential: `Authorization: Bearer …`, or `x-api-key` (Anthropic SDK)."""
    return credential_from_headers(request.headers)


def credential_from_headers(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("expected a Bearer token")
        return value.strip()
    key = headers.get("x-api-key", "")
    if key:
        return key.strip()
    raise Unauthenticated("authentication required")


async def authenticate(request: Request, rt: RuntimeDep) -> Principal:
    credential = credential_from(request)
    source = request.client.host if request.client else ""
    principal = await rt.identity.authenticate(credential, source=source)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: the caller must hold one of `roles` (admin holds every role)."""
    wanted = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if "admin" in principal.roles or principal.roles & wanted:
            return principal
        raise Forbidden(f"requires one of the roles: {', '.join(sorted(wanted))}")

    # Read by the route-matrix test to know which routes are role-restricted.
    check.required_roles = wanted  # type: ignore[attr-defined]
    return check


AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
