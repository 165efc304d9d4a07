"""Kill-switch fixtures: an app with a small model catalog and API keys per role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from opsgate.app import create_app
from opsgate.settings import Settings
from tests.conftest import AppHarness, migrated

UPSTREAM = "http://127.0.0.1:9/v1"  # never called: these tests stop before any provider


def catalog() -> dict[str, Any]:
    dep = {"provider": "openai", "base_url": UPSTREAM, "model": "up"}
    return {
        "ops-default": {"deployments": [{"name": "primary", **dep}, {"name": "spare", **dep}]},
        "other": {"deployments": [{"name": "solo", **dep}]},
    }


def ks_settings(make_settings: Any, **quota: Any) -> Settings:
    quota.setdefault("killswitch", {"reload_seconds": 0.2})
    s: Settings = make_settings(gateway={"models": catalog(), "quota": quota})
    return s


@pytest.fixture
async def ks_harness(make_settings: Any) -> AsyncIterator[AppHarness]:
    settings = ks_settings(make_settings)
    admin_key = await migrated(settings)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield AppHarness(app, client, admin_key)


MakeKey = Callable[..., Awaitable[tuple[str, str]]]


@pytest.fixture
def make_key(ks_harness: AppHarness) -> MakeKey:
    """(raw key, key id) of a new API key with `roles` in `tenant`."""

    async def _make(*roles: str, tenant: str = "default", name: str = "t") -> tuple[str, str]:
        rt = ks_harness.runtime
        if tenant != rt.settings.default_tenant:
            await rt.db.ensure_tenant(tenant)
        issued = await rt.identity.keys.create(
            tenant=tenant,
            name=name,
            kind="service",
            roles=list(roles),
            scopes=[],
            created_by="test",
            expires_at=None,
        )
        return issued.key, issued.key_id

    return _make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
