"""A fake model provider speaking the real OpenAI, Azure OpenAI and Anthropic wire formats.

The first path segment picks a behaviour, so each configured deployment can point at its
own: `http://127.0.0.1:PORT/<scenario>/v1`.

    ok          normal answers (echo of the last user message; tools are called)
    delay-<ms>  answer after <ms> milliseconds (streams: before the first chunk)
    429         429 with Retry-After: 1        429-<s>   Retry-After: <s>
    500 / 503 / 401 / 400
    garbage     200 with a body that is not JSON (streams: a non-JSON event)
    midstream   streams two chunks, then drops the connection
    hang        never answers
    drip        streams one chunk, then one every second (disconnect tests)
    flaky-<n>   the first <n> calls answer 503, then normally

Every call is recorded (`requests`); a stream the client abandons is noted in `cancelled`.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes import bedrock


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeState:
    requests: list[Recorded] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    record: bool = True


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _text(m.get("content"))
    return ""


def words(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text(m.get("content")).split()) for m in messages) or 1


def wants_tools(body: dict[str, Any]) -> list[str]:
    tools = body.get("tools") or []
    if not tools or body.get("tool_choice") == "none":
        return []
    names = [t["function"]["name"] if "function" in t else t["name"] for t in tools]
    return names[:2] if body.get("parallel_tool_calls", True) is not False else names[:1]


def reply_text(body: dict[str, Any], user: str) -> str:
    rf = body.get("response_format") or {}
    if rf.get("type") in {"json_object", "json_schema"}:
        return orjson.dumps({"echo": user}).decode()
    return f"echo: {user}"


def _error(status: int, retry_after: str | None = None) -> Response:
    headers = {"retry-after": retry_after} if retry_after else None
    body = {"error": {"message": f"fake upstream error {status}", "type": "fake", "code": None}}
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


class FakeProvider:
    def __init__(self) -> None:
        self.state = FakeState()
        self.app = Starlette(
            routes=[
                Route("/{sc}/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/{sc}/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/{sc}/v1/messages", self.messages, methods=["POST"]),
                Route(
                    "/{sc}/openai/deployments/{dep}/chat/completions", self.chat, methods=["POST"]
                ),
                Route("/{sc}/model/{model}/converse", self.converse, methods=["POST"]),
                Route(
                    "/{sc}/model/{model}/converse-stream", self.converse_stream, methods=["POST"]
                ),
            ]
        )

    @property
    def requests(self) -> list[Recorded]:
        return self.state.requests

    @property
    def cancelled(self) -> list[str]:
        return self.state.cancelled

    async def _begin(self, request: Request) -> tuple[str, dict[str, Any], Response | None]:
        sc = request.path_params["sc"]
        raw = await request.body()
        body = orjson.loads(raw) if raw else {}
        if self.state.record:
            self.state.requests.append(Recorded(request.url.path, dict(request.headers), body))
        if sc.startswith("delay-"):
            await asyncio.sleep(int(sc[6:]) / 1000)
        elif sc == "hang":
            # Never answers; notes when the caller gives up (the gateway cancelled us).
            while not await request.is_disconnected():
                await asyncio.sleep(0.02)
            self.state.cancelled.append(sc)
            return sc, body, Response(status_code=499)
        elif sc.startswith("flaky-"):
            n = self.state.counters.get(sc, 0)
            self.state.counters[sc] = n + 1
            if n < int(sc[6:]):
                return sc, body, _error(503)
        elif sc.startswith("429"):
            return sc, body, _error(429, sc[4:] or "1")
        elif sc in {"500", "503", "401", "400"}:
            return sc, body, _error(int(sc))
        return sc, body, None

    # -- OpenAI --------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        sc, body, early = await self._begin(request)
        if early is not None:
            return early
        if sc == "garbage" and not body.get("stream"):
            return Response(b"<html>bad gateway</html>", 200, media_type="application/json")
        if body.get("stream"):
            return StreamingResponse(self._chat_stream(sc, body), media_type="text/event-stream")
        return Response(orjson.dumps(completion(body)), media_type="application/json")

    async def _chat_stream(self, sc: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
        try:
            for i, chunk in enumerate(chat_chunks(body)):
                if sc == "garbage" and i == 1:
                    yield b"data: {not json\n\n"
                    return
                if sc == "midstream" and i == 2:
                    raise ConnectionResetError("fake upstream dropped the connection")
                if sc == "drip" and i >= 1:
                    await asyncio.sleep(1.0)
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            yield b"data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            self.state.cancelled.append(sc)
            raise

    async def embeddings(self, request: Request) -> Response:
        _sc, body, early = await self._begin(request)
        if early is not None:
            return early
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, text in enumerate(inputs):
            vec = [float(len(str(text))), float(i), 0.5]
            if body.get("encoding_format") == "base64":
                emb: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        n = sum(len(str(t).split()) for t in inputs)
        out = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": n, "total_tokens": n},
        }
        return Response(orjson.dumps(out), media_type="application/json")

    # -- Anthropic -----------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        sc, body, early = await self._begin(request)
        if early is not None:
            return early
        if body.get("stream"):
            return StreamingResponse(
                self._messages_stream(sc, body), media_type="text/event-stream"
            )
        return Response(orjson.dumps(anthropic_message(body)), media_type="application/json")

    async def _messages_stream(self, sc: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
        try:
            for i, (name, data) in enumerate(anthropic_events(body)):
                if sc == "midstream" and i == 3:
                    raise ConnectionResetError("fake upstream dropped the connection")
                yield f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            self.state.cancelled.append(sc)
            raise

    # -- Bedrock Converse ----------------------------------------------------------------

    async def converse(self, request: Request) -> Response:
        _sc, body, early = await self._begin(request)
        if early is not None:
            return early
        model = request.path_params["model"]
        return Response(orjson.dumps(bedrock.converse(body, model)), media_type="application/json")

    async def converse_stream(self, request: Request) -> Response:
        sc, body, early = await self._begin(request)
        if early is not None:
            return early

        async def frames() -> AsyncIterator[bytes]:
            for i, frame in enumerate(bedrock.converse_stream_frames(body)):
                if sc == "midstream" and i == 3:
                    raise ConnectionResetError("fake upstream dropped the connection")
                yield frame

        return StreamingResponse(frames(), media_type="application/vnd.amazon.eventstream")


# -- OpenAI shapes ---------------------------------------------------------------------


def completion(body: dict[str, Any]) -> dict[str, Any]:
    user = last_user_text(body["messages"])
    tools = wants_tools(body)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if tools:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": n, "arguments": orjson.dumps({"q": user}).decode()},
            }
            for i, n in enumerate(tools)
        ]
        finish = "tool_calls"
    else:
        message["content"] = reply_text(body, user)
        finish = "stop"
    pin = words(body["messages"])
    pout = len(str(message["content"] or "").split()) or 1
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout},
    }


def chat_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    user = last_user_text(body["messages"])
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": body.get("model"),
    }

    def ch(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [ch({"role": "assistant", "content": ""})]
    tools = wants_tools(body)
    pout = 0
    if tools:
        for i, name in enumerate(tools):
            args = orjson.dumps({"q": user}).decode()
            out.append(
                ch(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": f"call_{i}",
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                out.append(ch({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        out.append(ch({}, "tool_calls"))
        pout = len(tools)
    else:
        text = reply_text(body, user)
        pieces = text.split(" ")
        for i, w in enumerate(pieces):
            out.append(ch({"content": w if i == 0 else " " + w}))
        out.append(ch({}, "stop"))
        pout = len(pieces)
    if (body.get("stream_options") or {}).get("include_usage"):
        pin = words(body["messages"])
        out.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": pin,
                    "completion_tokens": pout,
                    "total_tokens": pin + pout,
                },
            }
        )
    return out


# -- Anthropic shapes ------------------------------------------------------------------


def _anthropic_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body["messages"]):
        if m["role"] == "user":
            c = m["content"]
            if isinstance(c, str):
                return c
            return " ".join(b.get("text", "") for b in c if b.get("type") == "text")
    return ""


def anthropic_message(body: dict[str, Any]) -> dict[str, Any]:
    user = _anthropic_user_text(body)
    tools = [t["name"] for t in body.get("tools") or []][:2]
    if (body.get("tool_choice") or {}).get("type") == "none":
        tools = []
    if tools:
        content = [
            {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": {"q": user}}
            for i, n in enumerate(tools)
        ]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": f"echo: {user}"}]
        stop = "end_turn"
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 3},
    }


def anthropic_events(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    msg = anthropic_message(body)
    start = {
        **msg,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 7, "output_tokens": 0},
    }
    ev: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            ev.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for w in ("echo:", " " + block["text"][6:]):
                ev.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": w},
                        },
                    )
                )
        else:
            ev.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {**block, "input": {}},
                    },
                )
            )
            args = orjson.dumps(block["input"]).decode()
            for piece in (args[:5], args[5:]):
                ev.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                    )
                )
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    ev.append(("ping", {"type": "ping"}))
    ev.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": 3},
            },
        )
    )
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev
