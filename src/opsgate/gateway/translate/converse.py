"""Canonical (OpenAI chat) <-> AWS Bedrock Converse / ConverseStream."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from opsgate.errors import BadRequest
from opsgate.gateway.profiles import JSON_INSTRUCTION
from opsgate.gateway.providers.base import ChatChunk
from opsgate.gateway.translate.to_anthropic import anthropic_tool_choice, split_turns

STOP_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Stream members that carry an upstream failure instead of an event.
STREAM_ERRORS = (
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
)


def _block(b: dict[str, Any]) -> dict[str, Any]:
    kind = b["type"]
    if kind == "text":
        return {"text": b["text"]}
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": b["id"], "name": b["name"], "input": b["input"]}}
    if kind == "tool_result":
        return {"toolResult": {"toolUseId": b["tool_use_id"], "content": [{"text": b["content"]}]}}
    src = b["source"]
    if src.get("type") != "base64":
        raise BadRequest("Bedrock accepts only inline (data: URL) images", code="unsupported")
    fmt = str(src.get("media_type", "image/png")).split("/")[-1]
    return {"image": {"format": fmt, "source": {"bytes": base64.b64decode(src["data"])}}}


def request_to_converse(
    body: dict[str, Any], model: str, default_max_tokens: int
) -> dict[str, Any]:
    system, turns = split_turns(body["messages"])
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in {"json_object", "json_schema"}:
        system = f"{system}\n\n{JSON_INSTRUCTION}" if system else JSON_INSTRUCTION
    out: dict[str, Any] = {
        "modelId": model,
        "messages": [
            {"role": t["role"], "content": [_block(b) for b in t["content"]]} for t in turns
        ],
    }
    if system:
        out["system"] = [{"text": system}]
    cfg: dict[str, Any] = {
        "maxTokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or default_max_tokens
    }
    if body.get("temperature") is not None:
        cfg["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        cfg["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        cfg["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    out["inferenceConfig"] = cfg
    tools = body.get("tools")
    if tools:
        spec = [
            {
                "toolSpec": {
                    "name": t["function"]["name"],
                    "description": t["function"].get("description") or t["function"]["name"],
                    "inputSchema": {"json": t["function"].get("parameters") or {"type": "object"}},
                }
            }
            for t in tools
        ]
        tool_config: dict[str, Any] = {"tools": spec}
        choice = anthropic_tool_choice(body)
        if choice and choice["type"] == "any":
            tool_config["toolChoice"] = {"any": {}}
        elif choice and choice["type"] == "tool":
            tool_config["toolChoice"] = {"tool": {"name": choice["name"]}}
        out["toolConfig"] = tool_config
    return out


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def response_from_converse(data: dict[str, Any], model: str) -> dict[str, Any]:
    content = ((data.get("output") or {}).get("message") or {}).get("content") or []
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if "text" in block:
            text.append(block["text"])
        elif "toolUse" in block:
            tu = block["toolUse"]
            calls.append(
                {
                    "id": tu.get("toolUseId", ""),
                    "type": "function",
                    "function": {"name": tu.get("name", ""), "arguments": _json(tu.get("input"))},
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    usage = data.get("usage") or {}
    pin, pout = int(usage.get("inputTokens") or 0), int(usage.get("outputTokens") or 0)
    rid = (data.get("ResponseMetadata") or {}).get("RequestId", "")
    return {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_TO_OPENAI.get(str(data.get("stopReason")), "stop"),
            }
        ],
        "usage": {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout},
    }


class ConverseEventsToChunks:
    """ConverseStream events -> OpenAI chunks."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.created = int(time.time())
        self.tool_index: dict[int, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.stopped = False
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        return {
            "id": "chatcmpl-bedrock",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def feed(self, event: dict[str, Any]) -> ChatChunk | None:
        if "messageStart" in event:
            return self._chunk({"role": "assistant", "content": ""})
        if "contentBlockStart" in event:
            ev = event["contentBlockStart"]
            tu = (ev.get("start") or {}).get("toolUse")
            if not tu:
                return None
            n = self.tool_index[int(ev.get("contentBlockIndex", 0))] = len(self.tool_index)
            fn = {"name": tu.get("name", ""), "arguments": ""}
            call = {"index": n, "id": tu.get("toolUseId", ""), "type": "function", "function": fn}
            return self._chunk({"tool_calls": [call]})
        if "contentBlockDelta" in event:
            ev = event["contentBlockDelta"]
            delta = ev.get("delta") or {}
            if "text" in delta:
                return self._chunk({"content": delta["text"]})
            if "toolUse" in delta:
                n = self.tool_index.get(int(ev.get("contentBlockIndex", 0)), 0)
                fn = {"arguments": delta["toolUse"].get("input", "")}
                return self._chunk({"tool_calls": [{"index": n, "function": fn}]})
            return None
        if "messageStop" in event:
            self.stopped = True
            reason = event["messageStop"].get("stopReason")
            return self._chunk({}, STOP_TO_OPENAI.get(str(reason), "stop"))
        if "metadata" in event:
            usage = event["metadata"].get("usage") or {}
            self.input_tokens = int(usage.get("inputTokens") or 0)
            self.output_tokens = int(usage.get("outputTokens") or 0)
            self.done = True
            return self.usage_chunk()
        return None

    def usage_chunk(self) -> ChatChunk:
        pin, pout = self.input_tokens, self.output_tokens
        return {
            "id": "chatcmpl-bedrock",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout},
        }
