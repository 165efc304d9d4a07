"""The `/v1/messages` front door: Anthropic Messages <-> canonical (OpenAI chat).

Requests become canonical bodies served by any provider; completions and chunk streams are
turned back into Anthropic messages and the event sequence message_start,
content_block_start/delta/stop, message_delta, message_stop (tool arguments as
input_json_delta).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from opsgate.errors import OpsGateError
from opsgate.gateway.providers.base import ChatChunk
from opsgate.gateway.wire.anthropic import STOP_FROM_OPENAI, MessagesRequest, sse_event


def _image_part(source: dict[str, Any]) -> dict[str, Any]:
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    else:
        url = str(source.get("url", ""))
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or () if b.get("type") == "text")


def _convert_message(msg: dict[str, Any]) -> list[dict[str, Any]]:
    role, content = msg["role"], msg["content"]
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for b in content:
        kind = b["type"]
        if kind == "text":
            parts.append({"type": "text", "text": b["text"]})
        elif kind == "image":
            parts.append(_image_part(b["source"]))
        elif kind == "tool_use":
            fn = {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()}
            calls.append({"id": b["id"], "type": "function", "function": fn})
        elif kind == "tool_result":
            text = _tool_result_text(b.get("content"))
            if b.get("is_error"):
                text = f"[tool error] {text}"
            out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": text})
    if role == "assistant":
        text = "".join(p.get("text", "") for p in parts)
        m: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            m["tool_calls"] = calls
        out.append(m)
    elif parts:
        only_text = all(p["type"] == "text" for p in parts)
        out.append(
            {"role": "user", "content": "".join(p["text"] for p in parts) if only_text else parts}
        )
    return out


def _tool_choice(tc: dict[str, Any], body: dict[str, Any]) -> None:
    kind = tc["type"]
    if kind == "auto":
        body["tool_choice"] = "auto"
    elif kind == "any":
        body["tool_choice"] = "required"
    elif kind == "none":
        body["tool_choice"] = "none"
    else:
        body["tool_choice"] = {"type": "function", "function": {"name": tc.get("name") or ""}}
    if tc.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False


def to_canonical(req: MessagesRequest) -> dict[str, Any]:
    data = req.model_dump(exclude_none=True)
    messages: list[dict[str, Any]] = []
    system = data.get("system")
    if system:
        text = system if isinstance(system, str) else "".join(b["text"] for b in system)
        messages.append({"role": "system", "content": text})
    for m in data["messages"]:
        messages.extend(_convert_message(m))
    body: dict[str, Any] = {"messages": messages, "max_tokens": data["max_tokens"]}
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ):
        if src in data:
            body[dst] = data[src]
    user = (data.get("metadata") or {}).get("user_id")
    if user:
        body["user"] = user
    if data.get("tools"):
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description") or "",
                    "parameters": t["input_schema"],
                },
            }
            for t in data["tools"]
        ]
        if data.get("tool_choice"):
            _tool_choice(data["tool_choice"], body)
    return body


def _blocks_from_message(msg: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if msg.get("content"):
        blocks.append({"type": "text", "text": msg["content"]})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                "name": fn.get("name", ""),
                "input": args if isinstance(args, dict) else {"value": args},
            }
        )
    return blocks


def from_completion(body: dict[str, Any], model: str) -> dict[str, Any]:
    choice = (body.get("choices") or [{}])[0]
    usage = body.get("usage") or {}
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks_from_message(choice.get("message") or {}),
        "stop_reason": STOP_FROM_OPENAI.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": int(usage.get("prompt_tokens") or 0),
            "output_tokens": int(usage.get("completion_tokens") or 0),
        },
    }


def error_body(err: OpsGateError) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        503: "overloaded_error",
        529: "overloaded_error",
    }
    return {
        "type": "error",
        "error": {"type": kinds.get(err.status, "api_error"), "message": err.detail},
    }


class AnthropicEncoder:
    """Canonical chunks -> Anthropic stream events, one chunk at a time."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.index = -1
        self.open_kind: str | None = None
        self.tool_blocks: dict[int, int] = {}
        self.stop_reason = "end_turn"
        self.input_tokens = 0
        self.output_tokens = 0

    def _ev(self, name: str, data: dict[str, Any]) -> bytes:
        return sse_event(name, orjson.dumps({"type": name, **data}))

    def _start(self) -> bytes:
        self.started = True
        message: dict[str, Any] = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return self._ev("message_start", {"message": message})

    def _close_block(self) -> bytes:
        if self.open_kind is None:
            return b""
        self.open_kind = None
        return self._ev("content_block_stop", {"index": self.index})

    def _open(self, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self.index += 1
        self.open_kind = block["type"]
        return out + self._ev("content_block_start", {"index": self.index, "content_block": block})

    def chunk(self, chunk: ChatChunk) -> bytes:
        out = b"" if self.started else self._start()
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = int(usage.get("prompt_tokens") or 0)
            self.output_tokens = int(usage.get("completion_tokens") or 0)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self.open_kind != "text":
                    out += self._open({"type": "text", "text": ""})
                out += self._ev(
                    "content_block_delta",
                    {"index": self.index, "delta": {"type": "text_delta", "text": text}},
                )
            for call in delta.get("tool_calls") or ():
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.stop_reason = STOP_FROM_OPENAI.get(choice["finish_reason"], "end_turn")
        return out

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        n = int(call.get("index", 0))
        fn = call.get("function") or {}
        if n not in self.tool_blocks:
            block = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                "name": fn.get("name", ""),
                "input": {},
            }
            out += self._open(block)
            self.tool_blocks[n] = self.index
        args = fn.get("arguments")
        if args:
            out += self._ev(
                "content_block_delta",
                {
                    "index": self.tool_blocks[n],
                    "delta": {"type": "input_json_delta", "partial_json": args},
                },
            )
        return out

    def end(self) -> bytes:
        out = b"" if self.started else self._start()
        out += self._close_block()
        out += self._ev(
            "message_delta",
            {
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            },
        )
        return out + self._ev("message_stop", {})

    def error(self, err: OpsGateError) -> bytes:
        return sse_event("error", orjson.dumps(error_body(err)))
