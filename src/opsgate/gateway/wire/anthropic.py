"""Anthropic Messages wire format (the `/v1/messages` front door and the native upstream).

Anthropic's API refuses unknown top-level fields, so this model does too; content blocks
are checked by type and the block types the gateway cannot translate are refused by name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STOP_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_FROM_OPENAI = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class TextBlock(_Lenient):
    type: Literal["text"]
    text: str


class ImageSource(_Lenient):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ImageBlock(_Lenient):
    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(_Lenient):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Lenient):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock] | None = None
    is_error: bool | None = None


Block = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock


class MessageParam(_Strict):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolParam(_Lenient):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any]


class ToolChoice(_Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(_Strict):
    user_id: str | None = Field(None, max_length=256)


class MessagesRequest(_Strict):
    model: str = Field(min_length=1, max_length=256)
    messages: list[MessageParam] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[TextBlock] | None = None
    metadata: Metadata | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, ge=0, le=1)
    tools: list[ToolParam] | None = Field(None, max_length=512)
    tool_choice: ToolChoice | None = None
    # Accepted for SDK compatibility; providers without these features ignore them.
    service_tier: str | None = None
    thinking: dict[str, Any] | None = None


def sse_event(name: str, data: bytes) -> bytes:
    """One Anthropic-style server-sent event."""
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
