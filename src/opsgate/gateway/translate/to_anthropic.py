"""Canonical (OpenAI chat) -> Anthropic Messages upstream, and its answers back.

Used by the native Anthropic provider. Consecutive same-role turns are merged (Anthropic
requires alternation); tool results become `tool_result` blocks in a user turn.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from opsgate.gateway.profiles import JSON_INSTRUCTION
from opsgate.gateway.providers.base import ChatChunk
from opsgate.gateway.wire.anthropic import STOP_TO_OPENAI
from opsgate.gateway.wire.openai import message_text


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = str((part.get("image_url") or {}).get("url", ""))
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": head, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content or ():
        if part.get("type") == "text":
            out.append({"type": "text", "text": part.get("text") or ""})
        elif part.get("type") == "image_url":
            out.append(_image_block(part))
    return out


def _args(raw: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if isinstance(raw, str) and raw else {}
    except orjson.JSONDecodeError:
        value = {"_raw": raw}
    return value if isinstance(value, dict) else {"value": value}


def _assistant_blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    out = _user_blocks(msg.get("content"))
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        out.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": fn.get("name", ""),
                "input": _args(fn.get("arguments")),
            }
        )
    return out


def split_turns(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in {"system", "developer"}:
            system.append(message_text(m.get("content")))
            continue
        if role == "tool":
            role, blocks = (
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m.get("tool_call_id", ""),
                        "content": message_text(m.get("content")),
                    }
                ],
            )
        elif role == "assistant":
            blocks = _assistant_blocks(m)
        else:
            role, blocks = "user", _user_blocks(m.get("content"))
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), turns


def anthropic_tool_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    tc = body.get("tool_choice")
    out: dict[str, Any] | None
    if tc is None:
        out = {"type": "auto"} if body.get("parallel_tool_calls") is False else None
    elif tc == "required":
        out = {"type": "any"}
    elif tc == "none":
        out = {"type": "none"}
    elif isinstance(tc, dict):
        out = {"type": "tool", "name": (tc.get("function") or {}).get("name", "")}
    else:
        out = {"type": "auto"}
    if out is not None and body.get("parallel_tool_calls") is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def request_to_anthropic(
    body: dict[str, Any], model: str, default_max_tokens: int, stream: bool
) -> dict[str, Any]:
    system, turns = split_turns(body["messages"])
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in {"json_object", "json_schema"}:
        system = f"{system}\n\n{JSON_INSTRUCTION}" if system else JSON_INSTRUCTION
    out: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or default_max_tokens,
    }
    if system:
        out["system"] = system
    if stream:
        out["stream"] = True
    if body.get("temperature") is not None:
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        out["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description") or "",
                "input_schema": t["function"].get("parameters") or {"type": "object"},
            }
            for t in tools
        ]
        choice = anthropic_tool_choice(body)
        if choice:
            out["tool_choice"] = choice
    return out


def response_from_anthropic(data: dict[str, Any], model: str) -> dict[str, Any]:
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    usage = data.get("usage") or {}
    pin, pout = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {
        "id": f"chatcmpl-{data.get('id', '')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_TO_OPENAI.get(str(data.get("stop_reason")), "stop"),
            }
        ],
        "usage": {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout},
    }


class AnthropicEventsToChunks:
    """Turns Anthropic stream events into OpenAI chunks, one event at a time."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "chatcmpl-anthropic"
        self.created = int(time.time())
        self.tool_index: dict[int, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.finished = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def feed(self, event: dict[str, Any]) -> ChatChunk | None:
        kind = event.get("type")
        if kind == "message_start":
            msg = event.get("message") or {}
            self.id = f"chatcmpl-{msg.get('id', '')}"
            self.model = msg.get("model") or self.model
            self.input_tokens = int((msg.get("usage") or {}).get("input_tokens") or 0)
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") != "tool_use":
                return None
            n = self.tool_index[int(event.get("index", 0))] = len(self.tool_index)
            call = {"index": n, "id": block.get("id", ""), "type": "function"}
            call["function"] = {"name": block.get("name", ""), "arguments": ""}
            return self._chunk({"tool_calls": [call]})
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self._chunk({"content": delta.get("text", "")})
            if delta.get("type") == "input_json_delta":
                n = self.tool_index.get(int(event.get("index", 0)), 0)
                fn = {"arguments": delta.get("partial_json", "")}
                return self._chunk({"tool_calls": [{"index": n, "function": fn}]})
            return None
        if kind == "message_delta":
            usage = event.get("usage") or {}
            self.output_tokens = int(usage.get("output_tokens") or self.output_tokens)
            reason = (event.get("delta") or {}).get("stop_reason")
            self.finished = True
            return self._chunk({}, STOP_TO_OPENAI.get(str(reason), "stop"))
        return None

    def usage_chunk(self) -> ChatChunk:
        pin, pout = self.input_tokens, self.output_tokens
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout},
        }
