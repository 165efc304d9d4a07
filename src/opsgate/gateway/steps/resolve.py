"""Step: resolve the logical model and estimate the request's size."""

from __future__ import annotations

from typing import Any

from opsgate.errors import BadRequest, NotFound
from opsgate.gateway.call import GatewayCall
from opsgate.gateway.settings import GatewaySettings
from opsgate.gateway.wire.openai import has_images

# A rough, fast estimate (about four characters per token) used only for routing and
# reservations; accounting uses the upstream's own counts.
CHARS_PER_TOKEN = 4


def resolve_model(call: GatewayCall, settings: GatewaySettings) -> None:
    model = settings.models.get(call.model_name)
    if model is None:
        raise NotFound(
            f"model {call.model_name!r} does not exist", code="model_not_found", param="model"
        )
    if model.kind != call.operation:
        raise BadRequest(
            f"model {call.model_name!r} serves {model.kind}, not {call.operation}",
            code="wrong_model_kind",
            param="model",
        )
    call.model = model
    call.trace.model = call.model_name


def _text_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_len(v) for v in value)
    if isinstance(value, dict):
        return sum(_text_len(v) for k, v in value.items() if k != "image_url")
    return 0


def estimate_input_tokens(body: dict[str, Any]) -> int:
    if "messages" in body:
        n = _text_len(body["messages"]) + _text_len(body.get("tools") or [])
    else:
        n = _text_len(body.get("input"))
    return n // CHARS_PER_TOKEN + 1


def needed_capabilities(call: GatewayCall) -> frozenset[str]:
    if call.operation == "embeddings":
        return frozenset({"embeddings"})
    caps = {"chat"}
    body = call.body
    if body.get("tools"):
        caps.add("tools")
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in {"json_object", "json_schema"}:
        caps.add("json")
    if call.stream:
        caps.add("stream")
    if has_images(body.get("messages") or []):
        caps.add("vision")
    return frozenset(caps)


def max_output_tokens(call: GatewayCall) -> int:
    b = call.body
    requested = b.get("max_completion_tokens") or b.get("max_tokens")
    if isinstance(requested, int):
        return requested
    return 1024 if call.operation == "chat" else 0
