"""The OpenAI- and Anthropic-compatible HTTP surface (thin: parse, run the pipeline, render).

The three model-call endpoints are plain Starlette routes at the front of the app's route
list (`model_call_routes`): FastAPI's per-request route machinery measured ~200 us of the
gateway's added latency (docs/benchmarks.md). They authenticate exactly as
`CurrentPrincipal` does (same credential parsing, same identity service); the cold
endpoints (model list, health) stay ordinary FastAPI routes.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from opsgate.errors import BadRequest, NotFound, OpsGateError, Unavailable
from opsgate.gateway.call import GatewayCall
from opsgate.gateway.deps import GatewayDep
from opsgate.gateway.disconnect import ClientGone, until_disconnect
from opsgate.gateway.pipeline import Pipeline
from opsgate.gateway.service import GatewayService
from opsgate.gateway.streaming import OpenAIEncoder, StreamEncoder, stream_response
from opsgate.gateway.translate.messages import (
    AnthropicEncoder,
    error_body,
    from_completion,
    to_canonical,
)
from opsgate.gateway.wire.anthropic import MessagesRequest
from opsgate.gateway.wire.openai import ChatCompletionRequest, EmbeddingRequest, validate_body
from opsgate.identity.deps import CurrentPrincipal, credential_from, require_roles
from opsgate.identity.principal import Principal

router = APIRouter(tags=["gateway"])
ROUTE_HEADER = "x-opsgate-route"


async def _principal(request: Request) -> Principal:
    rt = request.app.state.runtime
    source = request.client.host if request.client else ""
    principal: Principal = await rt.identity.authenticate(credential_from(request), source=source)
    request.state.principal = principal
    return principal


def _gateway(request: Request) -> GatewayService:
    gw: GatewayService | None = request.app.state.runtime.gateway
    if gw is None:
        raise Unavailable("the model gateway is disabled", code="gateway_disabled")
    return gw


def _json(data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), media_type="application/json", headers=headers)


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON", code="invalid_json") from None


def _new_call(
    request: Request, principal: Principal, operation: Any, body: dict[str, Any], **kw: Any
) -> GatewayCall:
    state = request.scope.get("state", {})
    return GatewayCall(
        principal,
        operation,
        str(body.get("model", "")),
        {k: v for k, v in body.items() if k != "model"},
        request_id=state.get("request_id"),
        trace_id=state.get("trace_id"),
        **kw,
    )


class _ObservedResponse(Response):
    """A JSON response whose call's metrics and span attributes are recorded once the body
    is sent (still inside the request's server span, which the middleware ends after the app
    returns), or if sending fails."""

    def __init__(self, content: bytes, headers: dict[str, str], p: Pipeline, call: GatewayCall):
        super().__init__(content, media_type="application/json", headers=headers)
        self.pipeline, self.call = p, call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.pipeline.observe(self.call)


async def _run(
    gw: GatewayService, call: GatewayCall, request: Request, encoder: StreamEncoder, render: Any
) -> Response:
    p = gw.pipeline
    try:
        await p.prepare(call)
        if call.stream:
            first, rest = await until_disconnect(request.receive, p.open_stream(call))
            headers = {ROUTE_HEADER: call.trace.header()}
            return stream_response(p, call, first, rest, encoder, headers)
        if call.operation == "embeddings":
            body = await until_disconnect(request.receive, p.embed(call))
        else:
            body = await until_disconnect(request.receive, p.complete(call))
        content = orjson.dumps(render(body))
    except OpsGateError as err:
        if call.plan is not None:
            err.headers = {**err.headers, ROUTE_HEADER: call.trace.header()}
        await p.finish(call, err)
        raise
    except ClientGone:
        call.status, call.outcome = 499, "client_disconnected"
        call.reasons.append("client disconnected; upstream call cancelled")
        await p.finish(call)
        return Response(status_code=499)
    except BaseException:
        call.status, call.outcome = 500, "error"
        await p.finish(call)
        raise
    await p.finish(call, observe=False)
    return _ObservedResponse(content, {ROUTE_HEADER: call.trace.header()}, p, call)


async def gateway_chat_completions(request: Request) -> Response:
    principal = await _principal(request)
    gw = _gateway(request)
    body = await _read_json(request)
    req = validate_body(ChatCompletionRequest, body)
    stream = bool(req.stream)
    include_usage = bool(stream and req.stream_options and req.stream_options.include_usage)
    call = _new_call(request, principal, "chat", body, stream=stream, include_usage=include_usage)
    encoder = OpenAIEncoder(call.model_name, include_usage)
    return await _run(gw, call, request, encoder, lambda b: b)


async def gateway_embeddings(request: Request) -> Response:
    principal = await _principal(request)
    gw = _gateway(request)
    body = await _read_json(request)
    validate_body(EmbeddingRequest, body)
    call = _new_call(request, principal, "embeddings", body)
    return await _run(gw, call, request, OpenAIEncoder(call.model_name, False), lambda b: b)


async def gateway_messages(request: Request) -> Response:
    try:
        principal = await _principal(request)
        gw = _gateway(request)
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object", code="invalid_request")
        req: MessagesRequest = validate_body(MessagesRequest, body)
        canonical = {"model": req.model, **to_canonical(req)}
        call = _new_call(
            request, principal, "chat", canonical, api="anthropic", stream=bool(req.stream)
        )
        return await _run(
            gw, call, request, AnthropicEncoder(req.model), lambda b: from_completion(b, req.model)
        )
    except OpsGateError as err:
        return Response(
            orjson.dumps(error_body(err)),
            status_code=err.status,
            media_type="application/json",
            headers=err.headers,
        )


@router.get("/v1/models")
async def gateway_list_models(principal: CurrentPrincipal, gw: GatewayDep) -> Response:
    models = await gw.models_for(principal)
    data = [{"id": m.id, "object": "model", "created": 0, "owned_by": "opsgate"} for m in models]
    return _json({"object": "list", "data": data})


@router.get("/v1/models/{model_id}")
async def gateway_get_model(model_id: str, principal: CurrentPrincipal, gw: GatewayDep) -> Response:
    for m in await gw.models_for(principal):
        if m.id == model_id:
            return _json({"id": m.id, "object": "model", "created": 0, "owned_by": "opsgate"})
    raise NotFound(f"model {model_id!r} does not exist", code="model_not_found")


@router.get("/api/v1/gateway/deployments")
async def gateway_deployment_health(
    principal: Annotated[Principal, Depends(require_roles("admin", "operator"))], gw: GatewayDep
) -> dict[str, Any]:
    """Health of each deployment: breaker state, EWMA latency, in-flight calls."""
    return {"deployments": gw.health.snapshot()}


def model_call_routes() -> list[Route]:
    """The model-call endpoints, for the app to put before every other route: FastAPI
    matches an included router's routes one by one (twice: to select, then to dispatch),
    and the gateway's came after ~100 others (~6% of the gateway's CPU at load)."""
    return [
        Route("/v1/chat/completions", gateway_chat_completions, methods=["POST"]),
        Route("/v1/embeddings", gateway_embeddings, methods=["POST"]),
        Route("/v1/messages", gateway_messages, methods=["POST"]),
    ]
