"""Gateway configuration: the model catalog, deployments, timeouts, retries, breakers.

Upstream base URLs exist only here (admin configuration); no client field can change them.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opsgate.gateway.quota.settings import QuotaSettings

ProviderKind = Literal["openai", "azure", "anthropic", "bedrock"]
Capability = Literal["chat", "tools", "vision", "json", "embeddings", "stream"]
Location = Literal["in_tenant", "external"]
Strategy = Literal["ordered", "weighted", "lowest_latency", "lowest_cost"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset({"chat", "tools", "json", "stream"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentSettings(_Strict):
    """One upstream model endpoint behind a logical model."""

    name: str = Field(pattern=_NAME)
    provider: ProviderKind
    # openai/azure/anthropic: required, http(s) only. bedrock: optional endpoint override.
    base_url: str = ""
    # Upstream model id (OpenAI/Anthropic/Bedrock modelId) or the Azure deployment name.
    model: str = Field(min_length=1, max_length=256)
    # A vault reference (secret://name) or empty for upstreams without auth (local vLLM).
    api_key: str = ""
    weight: float = Field(1.0, ge=0)
    price_in_per_1m: float = Field(0.0, ge=0)
    price_out_per_1m: float = Field(0.0, ge=0)
    context_window: int = Field(8192, ge=1)
    capabilities: frozenset[Capability] = DEFAULT_CAPABILITIES
    location: Location = "external"
    # Per-attempt timeout; empty uses gateway.attempt_timeout_seconds.
    timeout_seconds: float | None = Field(None, gt=0, le=3600)
    # Bulkhead: concurrent in-flight calls to this deployment; excess waits, then times out.
    max_concurrency: int = Field(256, ge=1, le=100_000)
    # azure
    api_version: str = "2024-10-21"
    auth: Literal["key", "entra"] = "key"
    entra_scope: str = "https://cognitiveservices.azure.com/.default"
    # bedrock
    region: str = ""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v:
            return v
        parts = urlsplit(v)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must not carry credentials, a query or a fragment")
        return v.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _secret_ref(cls, v: str) -> str:
        if v and not v.startswith("secret://"):
            raise ValueError("api_key must be a vault reference (secret://name), not a literal")
        return v

    @model_validator(mode="after")
    def _needs_url(self) -> DeploymentSettings:
        if self.provider != "bedrock" and not self.base_url:
            raise ValueError(f"deployment {self.name}: base_url is required for {self.provider}")
        if self.provider == "bedrock" and not self.region:
            raise ValueError(f"deployment {self.name}: region is required for bedrock")
        return self


class ModelSettings(_Strict):
    """A logical model users call, e.g. `ops-default`."""

    description: str = ""
    kind: Literal["chat", "embeddings"] = "chat"
    strategy: Strategy = "ordered"
    deployments: list[DeploymentSettings] = Field(min_length=1)
    # Refuse deployments whose estimated cost for this request exceeds this (USD).
    max_cost_per_request: float | None = Field(None, gt=0)
    # Total time for one request across retries and fallbacks; empty = gateway default.
    request_timeout_seconds: float | None = Field(None, gt=0, le=3600)


class RetrySettings(_Strict):
    # Attempts on one deployment before falling back to the next (1 = no retry).
    attempts_per_deployment: int = Field(2, ge=1, le=10)
    backoff_base_seconds: float = Field(0.05, ge=0, le=10)
    backoff_max_seconds: float = Field(2.0, ge=0, le=60)
    # An upstream Retry-After longer than this moves on to the next deployment instead.
    retry_after_cap_seconds: float = Field(5.0, ge=0, le=300)


class BreakerSettings(_Strict):
    failure_threshold: int = Field(5, ge=1, le=1000)
    cooldown_seconds: float = Field(30.0, gt=0, le=3600)


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    request_timeout_seconds: float = Field(300.0, gt=0, le=3600)
    attempt_timeout_seconds: float = Field(120.0, gt=0, le=3600)
    connect_timeout_seconds: float = Field(5.0, gt=0, le=60)
    # Streams: the longest silence between two upstream chunks before the stream is failed.
    stream_idle_timeout_seconds: float = Field(120.0, gt=0, le=3600)
    max_connections_per_provider: int = Field(512, ge=1, le=100_000)
    max_keepalive_per_provider: int = Field(128, ge=0, le=100_000)
    ewma_alpha: float = Field(0.2, gt=0, le=1)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    # How long a resolved provider credential is kept in memory before asking the vault again.
    secret_cache_seconds: float = Field(60.0, ge=0, le=3600)
    # Tenant whose vault holds the provider credentials (the catalog is platform config).
    secrets_tenant: str = "default"
    # Limits, budgets, kill switches and usage recording (docs/quotas.md).
    quota: QuotaSettings = Field(default_factory=QuotaSettings)

    @field_validator("models")
    @classmethod
    def _model_names(cls, v: dict[str, ModelSettings]) -> dict[str, ModelSettings]:
        seen: dict[str, DeploymentSettings] = {}
        for name, model in v.items():
            if not re.match(_NAME, name):
                raise ValueError(f"model name {name!r} is not a valid identifier")
            for dep in model.deployments:
                if model.kind == "embeddings" and "embeddings" not in dep.capabilities:
                    raise ValueError(
                        f"model {name}: deployment {dep.name} lacks the embeddings capability"
                    )
                other = seen.setdefault(dep.name, dep)
                if other != dep:
                    raise ValueError(
                        f"deployment {dep.name} is defined twice with different settings"
                    )
        return v
