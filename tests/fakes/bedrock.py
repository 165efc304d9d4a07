"""Bedrock Converse / ConverseStream wire format for the fake provider.

ConverseStream answers in the AWS event-stream binary framing (prelude, typed headers,
payload, CRC32s), which botocore parses exactly as it would from AWS.
"""

from __future__ import annotations

import binascii
import struct
from typing import Any

import orjson


def _user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if m["role"] == "user":
            return " ".join(b["text"] for b in m["content"] if "text" in b)
    return ""


def _tools(body: dict[str, Any]) -> list[str]:
    tools = (body.get("toolConfig") or {}).get("tools") or []
    return [t["toolSpec"]["name"] for t in tools][:2]


def converse(body: dict[str, Any], model: str) -> dict[str, Any]:
    user = _user_text(body)
    tools = _tools(body)
    if tools:
        content: list[dict[str, Any]] = [
            {"toolUse": {"toolUseId": f"tooluse_{i}", "name": n, "input": {"q": user}}}
            for i, n in enumerate(tools)
        ]
        stop = "tool_use"
    else:
        content = [{"text": f"echo: {user}"}]
        stop = "end_turn"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 11, "outputTokens": 4, "totalTokens": 15},
        "metrics": {"latencyMs": 5},
    }


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack("B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def frame(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", "application/json")
        + _header(":message-type", "event")
    )
    body = orjson.dumps(payload)
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + headers + body
    return msg + struct.pack(">I", binascii.crc32(msg) & 0xFFFFFFFF)


def converse_stream_frames(body: dict[str, Any]) -> list[bytes]:
    user = _user_text(body)
    tools = _tools(body)
    out = [frame("messageStart", {"role": "assistant"})]
    if tools:
        for i, name in enumerate(tools):
            start = {"toolUse": {"toolUseId": f"tooluse_{i}", "name": name}}
            out.append(frame("contentBlockStart", {"contentBlockIndex": i, "start": start}))
            args = orjson.dumps({"q": user}).decode()
            for piece in (args[:4], args[4:]):
                delta = {"toolUse": {"input": piece}}
                out.append(frame("contentBlockDelta", {"contentBlockIndex": i, "delta": delta}))
            out.append(frame("contentBlockStop", {"contentBlockIndex": i}))
        stop = "tool_use"
    else:
        for piece in ("echo:", f" {user}"):
            out.append(
                frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
            )
        out.append(frame("contentBlockStop", {"contentBlockIndex": 0}))
        stop = "end_turn"
    out.append(frame("messageStop", {"stopReason": stop}))
    usage = {"inputTokens": 11, "outputTokens": 4, "totalTokens": 15}
    out.append(frame("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}))
    return out
