"""The model-request pipeline, as a sequence of small steps over a `GatewayCall`.

    kill switch -> policy -> guard (prompt) -> route plan -> quota admit
    -> provider call (retries, fallback, breaker) -> guard (response) -> usage + audit

`prepare` runs everything before the upstream call; `complete`/`open_stream`/`embed` call
the route; `finish` settles quota and writes usage, audit and metrics exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span, Tracer

from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn, Outcome
from opsgate.errors import OpsGateError, UpstreamError
from opsgate.gateway.call import GatewayCall
from opsgate.gateway.fallback import Executor
from opsgate.gateway.health import HealthBoard
from opsgate.gateway.ports import (
    KillSwitchGate,
    ModelAccess,
    PromptGuard,
    QuotaGate,
    UsageEvent,
    UsageSink,
)
from opsgate.gateway.providers.base import (
    ChatChunk,
    ChatRequest,
    Credentials,
    EmbedResult,
    Provider,
    UpstreamTimeout,
)
from opsgate.gateway.router import Needs, estimate_cost, plan_route
from opsgate.gateway.settings import DeploymentSettings, GatewaySettings
from opsgate.gateway.steps.access import check_access
from opsgate.gateway.steps.guard import filter_completion, guard_prompt
from opsgate.gateway.steps.quota import admit, settle_or_release
from opsgate.gateway.steps.resolve import (
    estimate_input_tokens,
    max_output_tokens,
    needed_capabilities,
    resolve_model,
)
from opsgate.gateway.telemetry import GatewayMetrics, end_span, start_span
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.gateway")

Stream = tuple[ChatChunk, AsyncIterator[ChatChunk]]


@dataclass(slots=True)
class Governance:
    """The other domains' services the pipeline consults."""

    access: ModelAccess
    guard: PromptGuard
    quota: QuotaGate
    killswitch: KillSwitchGate
    usage: UsageSink
    audit: Auditor


def _outcome(status: int) -> Outcome:
    if status < 400:
        return "success"
    if status in {401, 403, 404, 429}:
        return "denied"
    return "error" if status >= 500 else "failure"


class Pipeline:
    def __init__(
        self,
        settings: GatewaySettings,
        gov: Governance,
        executor: Executor,
        health: HealthBoard,
        metrics: GatewayMetrics,
        tracer: Tracer,
        rng: random.Random | None = None,
    ) -> None:
        self.s = settings
        self.gov = gov
        self.executor = executor
        self.health = health
        self.metrics = metrics
        self.tracer = tracer
        self.rng = rng or random.Random()

    # -- before the upstream call -------------------------------------------------------

    async def prepare(self, call: GatewayCall) -> None:
        resolve_model(call, self.s)
        assert call.model is not None
        await self.gov.killswitch.check(call.model_name, call.key_id, call.principal.tenant)
        await check_access(call, self.gov.access)
        await guard_prompt(call, self.gov.guard)
        self._cap_tokens(call)
        call.est_input_tokens = estimate_input_tokens(call.body)
        out = max_output_tokens(call)
        ceilings = [c for c in (call.model.max_cost_per_request, call.max_cost) if c is not None]
        call.plan = plan_route(
            call.model_name,
            call.model,
            Needs(needed_capabilities(call), call.est_input_tokens, out),
            in_tenant_only=call.in_tenant_only,
            max_cost=min(ceilings) if ceilings else None,
            health=self.health,
            killed=self.gov.killswitch.is_killed,
            rng=self.rng,
        )
        call.est_cost = max(
            estimate_cost(d, call.est_input_tokens, out) for d in call.plan.candidates
        )
        await admit(call, self.gov.quota, out)

    def _cap_tokens(self, call: GatewayCall) -> None:
        cap = call.max_tokens_cap
        if cap is None or call.operation != "chat":
            return
        body = dict(call.body)
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(body.get(key), int) and body[key] > cap:
                body[key] = cap
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = cap
        call.body = body
        call.reasons.append(f"max_tokens capped at {cap} by policy")

    def _deadline(self, call: GatewayCall) -> float:
        assert call.model is not None
        total = call.model.request_timeout_seconds or self.s.request_timeout_seconds
        return time.monotonic() + total

    # -- the upstream call --------------------------------------------------------------

    async def complete(self, call: GatewayCall) -> dict[str, Any]:
        """A non-streamed chat completion, filtered and accounted."""
        assert call.plan is not None
        req = ChatRequest(call.body)
        call.span, call.own_span = start_span(self.tracer, "chat", call.model_name, call.body)

        async def attempt(p: Provider, d: DeploymentSettings, c: Credentials, t: float) -> Any:
            return await p.chat(req, d, c, timeout=t)

        result = await self.executor.run(call.plan, call.trace, self._deadline(call), attempt)
        self._bind(call)
        self.health.get(call.trace.deployment or "").release()
        self._usage(call, result.input_tokens, result.output_tokens)
        body: dict[str, Any] = result.body
        filter_completion(body, call.response_filter)
        body["model"] = call.model_name
        return body

    async def embed(self, call: GatewayCall) -> dict[str, Any]:
        assert call.plan is not None
        body = {k: v for k, v in call.body.items() if k != "model"}
        call.span, call.own_span = start_span(self.tracer, "embeddings", call.model_name, body)

        async def attempt(p: Provider, d: DeploymentSettings, c: Credentials, t: float) -> Any:
            return await p.embed(body, d, c, timeout=t)

        result: EmbedResult = await self.executor.run(
            call.plan, call.trace, self._deadline(call), attempt
        )
        self._bind(call)
        self.health.get(call.trace.deployment or "").release()
        self._usage(call, result.input_tokens, 0)
        result.body["model"] = call.model_name
        return result.body

    async def open_stream(self, call: GatewayCall) -> Stream:
        """The first upstream chunk and the rest; fallback is possible only until then."""
        assert call.plan is not None
        req = ChatRequest(call.body, stream=True, include_usage=call.include_usage)
        call.span, call.own_span = start_span(self.tracer, "chat", call.model_name, call.body)

        async def attempt(p: Provider, d: DeploymentSettings, c: Credentials, t: float) -> Any:
            agen = p.stream_chat(req, d, c, timeout=t)
            try:
                async with asyncio.timeout(t):
                    first = await anext(agen)
            except StopAsyncIteration:
                raise UpstreamError(
                    "upstream sent an empty stream", code="upstream_disconnected"
                ) from None
            except TimeoutError:
                await agen.aclose()
                raise UpstreamTimeout("upstream sent no first chunk in time") from None
            except BaseException:
                await agen.aclose()
                raise
            return first, agen

        stream: Stream = await self.executor.run(
            call.plan, call.trace, self._deadline(call), attempt
        )
        self._bind(call)
        return stream

    def _bind(self, call: GatewayCall) -> None:
        assert call.model is not None
        name = call.trace.deployment
        call.deployment = next(d for d in call.model.deployments if d.name == name)

    def _usage(self, call: GatewayCall, tokens_in: int, tokens_out: int) -> None:
        call.input_tokens, call.output_tokens = tokens_in, tokens_out
        if call.deployment is not None:
            call.cost = estimate_cost(call.deployment, tokens_in, tokens_out)

    def stream_usage(self, call: GatewayCall, tokens_in: int, tokens_out: int) -> None:
        self._usage(call, tokens_in, tokens_out)

    def release_stream(self, call: GatewayCall) -> None:
        if call.deployment is not None:
            self.health.get(call.deployment.name).release()

    # -- after ----------------------------------------------------------------------------

    async def finish(
        self, call: GatewayCall, error: OpsGateError | None = None, *, observe: bool = True
    ) -> None:
        """Settle quota, record usage and audit (and, unless `observe` is False, metrics and
        span attributes); safe to call more than once.

        With observe=False the caller runs `observe(call)` itself after sending the response:
        only observability waits, never the quota release (a caller's next request must see
        its concurrency slot free) or the audit event (the audit API's read-your-writes).
        """
        if call.finished:
            return
        call.finished = True
        if error is not None:
            call.status, call.error_code = error.status, error.code
            call.outcome = "denied" if _outcome(error.status) == "denied" else "error"
        elif call.outcome == "pending":
            call.outcome = "success"
        try:
            await settle_or_release(call, self.gov.quota)
        except Exception:
            log.exception("quota settle failed", model=call.model_name)
        call.latency = time.perf_counter() - call.started
        if observe:
            self.observe(call)
        if call.plan is not None:
            self.gov.usage.record(self._usage_event(call, call.latency))
        await self.gov.audit.emit(self._audit_event(call, call.latency))

    def observe(self, call: GatewayCall) -> None:
        """Prometheus metrics and the GenAI attributes on the request's span."""
        dep = call.deployment.name if call.deployment else "none"
        self._metrics(call, dep, call.latency)
        span: Span | None = call.span
        if span is not None:
            end_span(
                span,
                call.own_span,
                deployment=call.deployment,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                status=call.status,
                error_code=call.error_code,
                route=call.trace.header(),
            )

    def _metrics(self, call: GatewayCall, dep: str, latency: float) -> None:
        m, model = self.metrics, call.model_name
        m.child(m.requests, model, dep, str(call.status)).inc()
        m.child(m.latency, model, dep).observe(latency)
        if call.input_tokens:
            m.child(m.tokens, model, dep, "input").inc(call.input_tokens)
        if call.output_tokens:
            m.child(m.tokens, model, dep, "output").inc(call.output_tokens)
        if call.cost:
            m.child(m.cost, model, dep).inc(call.cost)

    def _usage_event(self, call: GatewayCall, latency: float) -> UsageEvent:
        d = call.deployment
        return UsageEvent(
            tenant=call.principal.tenant,
            principal_id=call.principal.id,
            key_id=call.key_id,
            groups=call.principal.groups,
            model=call.model_name,
            deployment=d.name if d else None,
            route=call.trace.header(),
            provider=d.provider if d else None,
            operation=call.operation,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cost=call.cost,
            status=call.outcome if call.status < 400 else (call.error_code or str(call.status)),
            latency_ms=round(latency * 1000, 3),
            request_id=call.request_id,
            trace_id=call.trace_id,
            stream=call.stream,
        )

    def _audit_event(self, call: GatewayCall, latency: float) -> AuditEventIn:
        outcome = _outcome(call.status)
        if call.status < 400 and call.outcome != "success":
            outcome = "failure"
        reason = "; ".join(call.reasons[-3:]) if outcome != "success" else "allowed"
        if call.error_code:
            reason = f"{call.error_code}: {reason}" if call.reasons else call.error_code
        return AuditEventIn(
            tenant=call.principal.tenant,
            actor=call.principal.id,
            action=f"model.{call.operation}",
            resource=f"model:{call.model_name}",
            outcome=outcome,
            reason=reason,
            payload={
                "api": call.api,
                "stream": call.stream,
                "status": call.status,
                "result": call.outcome,
                "route": call.trace.as_audit(),
                "route_header": call.trace.header(),
                "classification": call.classification,
                "findings": call.findings,
                "decisions": call.reasons,
                "policy": call.policy,
                "input_tokens": call.input_tokens,
                "output_tokens": call.output_tokens,
                # Integers: a float sends the whole event down the audit log's slow
                # RFC 8785 encoder (~6% of the gateway's CPU at load).
                "cost_nanousd": round(call.cost * 1e9),
                "latency_us": round(latency * 1e6),
                "key_id": call.key_id,
                "request_id": call.request_id,
            },
            trace_id=call.trace_id,
        )
