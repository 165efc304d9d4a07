"""Gateway fixtures: the fake provider and OpsGate itself, both served over real HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from opsgate.app import create_app
from opsgate.audit.schemas import AuditEventIn
from opsgate.identity.apikeys import ApiKeyStore
from tests.conftest import migrated
from tests.fakes.provider import FakeProvider
from tests.fakes.server import serve

KEY_COMBOS = [
    ("user", ""),
    ("admin", ""),
    ("operator", ""),
    ("user", "model:ops-*"),
    ("user", "model:embed"),
]


def dep(name: str, url: str, scenario: str = "ok", **kw: Any) -> dict[str, Any]:
    provider = kw.pop("provider", "openai")
    suffix = "/v1" if provider == "openai" else ""
    out = {
        "name": name,
        "provider": provider,
        "base_url": f"{url}/{scenario}{suffix}",
        "model": kw.pop("model", f"up-{name}"),
        "price_in_per_1m": 1.0,
        "price_out_per_1m": 2.0,
    }
    out.update(kw)
    return out


def default_models(url: str) -> dict[str, Any]:
    return {
        "ops-default": {"deployments": [dep("primary", url)]},
        "tenant-chat": {"deployments": [dep("ext", url), dep("local", url, location="in_tenant")]},
        # The default policy bundle allows this one to admin/operator only, max_tokens 4096.
        "confidential-chat": {"deployments": [dep("conf", url, location="in_tenant")]},
        "external-only": {"deployments": [dep("ext-only", url)]},
        "fallback-chat": {
            "deployments": [dep("rl", url, "429"), dep("boom", url, "500"), dep("good", url)]
        },
        "all-429": {"deployments": [dep("rl1", url, "429"), dep("rl2", url, "429-2")]},
        "garbage-chat": {"deployments": [dep("junk", url, "garbage")]},
        "midstream-chat": {"deployments": [dep("cut", url, "midstream"), dep("spare", url)]},
        "drip-chat": {"deployments": [dep("drip", url, "drip")]},
        "hang-chat": {
            "deployments": [dep("hang", url, "hang", timeout_seconds=0.5)],
            "request_timeout_seconds": 2,
        },
        "embed": {
            "kind": "embeddings",
            "deployments": [dep("emb", url, capabilities=["embeddings"])],
        },
        "claude": {"deployments": [dep("claude-up", url, provider="anthropic")]},
    }


@dataclass
class GatewayEnv:
    url: str
    app: FastAPI
    fake: FakeProvider
    keys: dict[tuple[str, str], str]

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def token(self, roles: str = "user", scopes: str = "") -> str:
        return self.keys[(roles, scopes)]

    def headers(self, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kw)}"}

    def openai(self, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self.token(**kw), base_url=f"{self.url}/v1", max_retries=0, timeout=20
        )

    def anthropic(self, **kw: Any) -> anthropic.AsyncAnthropic:
        # api_key= is what the SDK sends by default (the x-api-key header)
        return anthropic.AsyncAnthropic(
            api_key=self.token(**kw), base_url=self.url, max_retries=0, timeout=20
        )

    @property
    def audit(self) -> list[Any]:
        """Audit events the gateway emitted (also written to the durable log)."""
        return list(self.runtime.gateway.governance.audit.events)


class AuditTap:
    """Forwards to the runtime's auditor and keeps a copy for assertions."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: list[AuditEventIn] = []

    async def emit(self, event: AuditEventIn) -> None:
        self.events.append(event)
        await self.inner.emit(event)

    async def flush(self) -> None:
        await self.inner.flush()


async def _keys(rt: Any) -> dict[tuple[str, str], str]:
    store = ApiKeyStore(rt.db, rt.secret_key, rt.settings.identity.api_key_prefix)
    out = {}
    for roles, scopes in KEY_COMBOS:
        issued = await store.create(
            tenant=rt.settings.default_tenant,
            name=f"t-{roles}-{scopes}",
            kind="user",
            roles=roles.split(","),
            scopes=[scopes] if scopes else [],
            created_by="test",
            expires_at=None,
        )
        out[(roles, scopes)] = issued.key
    return out


MakeGateway = Callable[..., Awaitable[GatewayEnv]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    fp = FakeProvider()
    async with serve(fp.app) as url:
        fp.url = url  # type: ignore[attr-defined]
        yield fp


@pytest.fixture
async def make_gateway(make_settings: Any, fake: FakeProvider) -> AsyncIterator[MakeGateway]:
    stack = contextlib.AsyncExitStack()

    async def _make(models: dict[str, Any] | None = None, **gateway: Any) -> GatewayEnv:
        url = fake.url  # type: ignore[attr-defined]
        gateway.setdefault("retry", {"attempts_per_deployment": 1, "backoff_base_seconds": 0.01})
        settings = make_settings(gateway={"models": models or default_models(url), **gateway})
        await migrated(settings)
        app = create_app(settings)
        await stack.enter_async_context(LifespanManager(app, startup_timeout=30))
        gov = app.state.runtime.gateway.governance
        gov.audit = AuditTap(gov.audit)
        base = await stack.enter_async_context(serve(app))
        return GatewayEnv(base, app, fake, await _keys(app.state.runtime))

    async with stack:
        yield _make


@pytest.fixture
async def gw(make_gateway: MakeGateway) -> GatewayEnv:
    return await make_gateway()
