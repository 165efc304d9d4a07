"""OpenAI wire format: validated request models and the shapes of responses and chunks.

Field policy (see docs/gateway.md): known fields are type-checked; unknown top-level fields
are vendor parameters (vLLM's `top_k`, …) and pass through to OpenAI-compatible upstreams;
fields that could choose an upstream, credentials or headers are refused outright.
Responses and stream chunks stay plain dicts (orjson) on the hot path; the TypedDicts
document their shape.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsgate.errors import BadRequest

# Parameters other gateways accept that redirect the call or change its credentials: SSRF
# and credential-injection vectors. Refusing them is clearer than silently dropping them.
FORBIDDEN_PARAMS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "api_type",
        "organization",
        "custom_llm_provider",
        "deployment_id",
        "headers",
        "extra_headers",
        "extra_query",
        "azure_ad_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region_name",
        "proxy",
        "proxy_url",
        "mock_response",
        "metadata_url",
        "vertex_credentials",
    }
)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FunctionDef(_Strict):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDef


class ToolCallFunction(_Lenient):
    name: str
    arguments: str


class ToolCall(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ContentPart(_Lenient):
    type: str
    text: str | None = None
    image_url: dict[str, Any] | None = None


class Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class StreamOptions(_Lenient):
    include_usage: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(_Lenient):
    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=16)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    user: str | None = Field(None, max_length=256)
    seed: int | None = None
    tools: list[Tool] | None = Field(None, max_length=512)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


class EmbeddingRequest(_Lenient):
    model: str = Field(min_length=1, max_length=256)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = Field(None, max_length=256)


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(TypedDict, total=False):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: Usage


class ChatCompletionChunk(TypedDict, total=False):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: Usage | None


def validate_body(model: type[BaseModel], body: Any) -> Any:
    """Validate a decoded JSON body; the first problem becomes an OpenAI-shaped 400."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_request")
    bad = FORBIDDEN_PARAMS.intersection(body)
    if bad:
        name = sorted(bad)[0]
        raise BadRequest(
            f"{name}: not accepted; upstreams and credentials come only from the gateway "
            "configuration",
            code="forbidden_parameter",
            param=name,
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise BadRequest(f"{loc}: {err['msg']}", code="invalid_request", param=loc) from exc


def message_text(content: Any) -> str:
    """The text of an OpenAI message content (string or content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def has_images(messages: list[dict[str, Any]]) -> bool:
    for m in messages:
        c = m.get("content")
        if isinstance(c, list) and any(
            isinstance(p, dict) and p.get("type") == "image_url" for p in c
        ):
            return True
    return False
