"""Gateway metrics (on the app's registry) and GenAI semantic-convention spans.

Spans carry model names, token counts and the route, never prompt or completion text.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from opsgate.gateway.health import STATE_VALUE
from opsgate.gateway.settings import DeploymentSettings

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# OpenTelemetry GenAI `gen_ai.provider.name` values.
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
}


# Bound on cached label children (model x deployment x status or direction).
MAX_CACHED_CHILDREN = 4096


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "opsgate_gateway_requests_total",
            "Gateway model requests by logical model, deployment and status",
            ["model", "deployment", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "opsgate_gateway_request_duration_seconds",
            "Gateway request duration (to the last byte)",
            ["model", "deployment"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttfb = Histogram(
            "opsgate_gateway_time_to_first_chunk_seconds",
            "Streaming: time until the first upstream chunk",
            ["model", "deployment"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "opsgate_gateway_tokens_total",
            "Tokens by logical model, deployment and direction",
            ["model", "deployment", "direction"],
            registry=registry,
        )
        self.cost = Counter(
            "opsgate_gateway_cost_usd_total",
            "Estimated spend in USD by logical model and deployment",
            ["model", "deployment"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "opsgate_gateway_fallbacks_total",
            "Failed upstream attempts that led to a retry or a fallback",
            ["model", "deployment", "reason"],
            registry=registry,
        )
        self.breaker = Gauge(
            "opsgate_gateway_breaker_state",
            "Circuit breaker state per deployment (0 closed, 1 half-open, 2 open)",
            ["deployment"],
            registry=registry,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: prometheus_client validates and locks on every
        labels() call, and a finished request made up to five of them. A child is still
        created on first use only, so series appear exactly as before."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = metric.labels(*labels)
            if len(self._children) < MAX_CACHED_CHILDREN:
                self._children[key] = found
        return found

    def on_breaker(self, deployment: str, state: str) -> None:
        self.breaker.labels(deployment).set(STATE_VALUE[state])

    def on_fallback(self, model: str, deployment: str, reason: str) -> None:
        self.fallbacks.labels(model, deployment, reason).inc()


def start_span(
    tracer: Tracer, operation: str, model: str, request: dict[str, Any]
) -> tuple[Span, bool]:
    """The span that carries the GenAI attributes, and whether we own it (must end it).

    The request's server span is used when there is one: a second span per request
    measured ~6% of the gateway's CPU at load. That holds for a non-recording server span
    too (nothing exports, or its trace was not sampled): a child would not record either, so
    no span is started and no attributes are built. Only a call outside any span (no
    request around it) starts its own.
    """
    span = trace.get_current_span()
    own = not span.get_span_context().is_valid
    if own:
        span = tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT)
    if not span.is_recording():
        return span, own
    # One set_attributes call: the SDK takes its lock and checks limits per call.
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": model,
        "opsgate.model": model,
    }
    for key, attr in (
        ("max_tokens", "gen_ai.request.max_tokens"),
        ("max_completion_tokens", "gen_ai.request.max_tokens"),
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
    ):
        value = request.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[attr] = value
    span.set_attributes(attrs)
    return span, own


def end_span(
    span: Span,
    own: bool,
    *,
    deployment: DeploymentSettings | None,
    input_tokens: int,
    output_tokens: int,
    status: int,
    error_code: str | None,
    route: str,
) -> None:
    if not span.is_recording():
        if own:
            span.end()
        return
    attrs: dict[str, Any] = {}
    if deployment is not None:
        name = PROVIDER_NAMES[deployment.provider]
        attrs["gen_ai.provider.name"] = name
        attrs["gen_ai.system"] = name
        attrs["gen_ai.response.model"] = deployment.model
        attrs["opsgate.deployment"] = deployment.name
        attrs["opsgate.location"] = deployment.location
    attrs["gen_ai.usage.input_tokens"] = input_tokens
    attrs["gen_ai.usage.output_tokens"] = output_tokens
    attrs["opsgate.route"] = route
    if error_code:
        attrs["error.type"] = error_code
    span.set_attributes(attrs)
    if status >= 500 or error_code:
        span.set_status(Status(StatusCode.ERROR))
    if own:
        span.end()
