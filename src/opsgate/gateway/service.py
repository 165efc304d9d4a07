"""The gateway service: providers, health, executor and pipeline for one OpsGate instance."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry

from opsgate.gateway.credentials import CredentialCache, SecretSource
from opsgate.gateway.fallback import Executor
from opsgate.gateway.health import HealthBoard
from opsgate.gateway.pipeline import Governance, Pipeline
from opsgate.gateway.providers.anthropic import AnthropicProvider
from opsgate.gateway.providers.azure import AzureOpenAIProvider
from opsgate.gateway.providers.base import Provider
from opsgate.gateway.providers.bedrock import BedrockProvider
from opsgate.gateway.providers.openai_compat import OpenAICompatProvider
from opsgate.gateway.settings import GatewaySettings
from opsgate.gateway.steps.access import scope_allows
from opsgate.gateway.telemetry import GatewayMetrics
from opsgate.gateway.upstream_http import UpstreamClient
from opsgate.identity.principal import Principal


@dataclass(slots=True)
class ModelInfo:
    id: str
    kind: str
    description: str


def build_providers(s: GatewaySettings, azure_credentials: Any = None) -> dict[str, Provider]:
    def client() -> UpstreamClient:
        return UpstreamClient(
            connect_timeout=s.connect_timeout_seconds,
            idle_timeout=s.stream_idle_timeout_seconds,
            max_connections=s.max_connections_per_provider,
            max_keepalive=s.max_keepalive_per_provider,
        )

    used = {d.provider for m in s.models.values() for d in m.deployments}
    out: dict[str, Provider] = {}
    if "openai" in used:
        out["openai"] = OpenAICompatProvider(client())
    if "azure" in used:
        out["azure"] = (
            AzureOpenAIProvider(client(), azure_credentials)
            if azure_credentials is not None
            else AzureOpenAIProvider(client())
        )
    if "anthropic" in used:
        out["anthropic"] = AnthropicProvider(client())
    if "bedrock" in used:
        out["bedrock"] = BedrockProvider(
            connect_timeout=s.connect_timeout_seconds, read_timeout=s.stream_idle_timeout_seconds
        )
    return out


class GatewayService:
    """Owns the long-lived gateway state; request handling goes through `pipeline`."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        governance: Governance,
        secrets: SecretSource | None,
        registry: CollectorRegistry,
        tracer: Tracer,
        providers: dict[str, Provider] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.governance = governance
        self.metrics = GatewayMetrics(registry)
        self.health = HealthBoard(settings, self.metrics.on_breaker)
        for name in self.health.snapshot():
            self.metrics.breaker.labels(name).set(0)
        self.providers = providers if providers is not None else build_providers(settings)
        self.credentials = CredentialCache(secrets, settings.secret_cache_seconds)
        self.executor = Executor(
            settings,
            self.providers,
            self.health,
            self.credentials,
            self.metrics.on_fallback,
            rng,
        )
        self.pipeline = Pipeline(
            settings, governance, self.executor, self.health, self.metrics, tracer, rng
        )

    async def models_for(self, principal: Principal) -> list[ModelInfo]:
        """The logical models this principal may call."""
        out = []
        for name, model in self.settings.models.items():
            if not scope_allows(principal, name):
                continue
            decision = await self.governance.access.decide(principal, name, {"operation": "list"})
            if decision.allow:
                out.append(ModelInfo(name, model.kind, model.description))
        return out

    async def aclose(self) -> None:
        for p in self.providers.values():
            await p.aclose()
