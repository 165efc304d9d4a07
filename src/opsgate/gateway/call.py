"""The typed context one gateway request carries through the pipeline steps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.trace import Span

from opsgate.gateway.fallback import RouteTrace
from opsgate.gateway.ports import ResponseFilter
from opsgate.gateway.router import RoutePlan
from opsgate.gateway.settings import DeploymentSettings, ModelSettings
from opsgate.identity.principal import Principal

Operation = Literal["chat", "embeddings"]


@dataclass(slots=True)
class GatewayCall:
    principal: Principal
    operation: Operation
    model_name: str
    # Canonical body (OpenAI chat or embeddings request), as the client sent it, then as the
    # guard rewrote it. The client's `model` is replaced by each deployment's own id.
    body: dict[str, Any]
    api: Literal["openai", "anthropic"] = "openai"
    stream: bool = False
    include_usage: bool = False
    request_id: str | None = None
    trace_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    model: ModelSettings | None = None
    classification: str = "internal"
    in_tenant_only: bool = False
    max_cost: float | None = None
    max_tokens_cap: int | None = None
    guard_actions: dict[str, str] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    response_filter: ResponseFilter | None = None
    reservation: Any = None
    est_input_tokens: int = 0
    est_cost: float = 0.0
    plan: RoutePlan | None = None
    trace: RouteTrace = field(default_factory=lambda: RouteTrace(""))
    deployment: DeploymentSettings | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    status: int = 200
    outcome: str = "pending"
    error_code: str | None = None
    reasons: list[str] = field(default_factory=list)
    finished: bool = False
    latency: float = 0.0  # seconds, set by Pipeline.finish
    span: Span | None = None
    own_span: bool = False

    @property
    def key_id(self) -> str | None:
        return self.principal.credential_id
