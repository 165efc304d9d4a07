"""Each provider against the fake upstream's real wire protocol (HTTP on loopback).

Bedrock: the real boto3/botocore client (SigV4, Converse JSON, ConverseStream's binary
event-stream framing) against the fake. Azure: deployment URLs, api-version, key header
and Entra ID bearer tokens (from an injected token credential).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from opsgate.errors import UpstreamError
from opsgate.gateway.providers.anthropic import AnthropicProvider
from opsgate.gateway.providers.azure import AzureOpenAIProvider
from opsgate.gateway.providers.base import (
    ChatRequest,
    Credentials,
    UpstreamStatusError,
    retry_after_seconds,
)
from opsgate.gateway.providers.bedrock import BedrockProvider
from opsgate.gateway.providers.openai_compat import OpenAICompatProvider
from opsgate.gateway.settings import DeploymentSettings
from opsgate.gateway.sse import iter_sse
from opsgate.gateway.upstream_http import UpstreamClient
from tests.fakes.provider import FakeProvider

TOOLS = [
    {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "b"}},
]
AWS = Credentials(
    orjson.dumps({"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}).decode()
)


def _client() -> UpstreamClient:
    return UpstreamClient(connect_timeout=2, idle_timeout=5, max_connections=8, max_keepalive=8)


def _dep(provider: str, base: str, **kw: Any) -> DeploymentSettings:
    return DeploymentSettings(
        name=f"d-{provider}",
        provider=provider,  # type: ignore[arg-type]
        base_url=base,
        model=kw.pop("model", "up-model"),
        **kw,
    )


async def _collect(it: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c async for c in it]


def _text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def _args(chunks: list[dict[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for c in chunks:
        for ch in c["choices"]:
            for tc in ch["delta"].get("tool_calls") or ():
                out[tc["index"]] = out.get(tc["index"], "") + (
                    tc["function"].get("arguments") or ""
                )
    return out


async def test_openai_compat_errors(fake: FakeProvider) -> None:
    p = OpenAICompatProvider(_client())
    url = fake.url  # type: ignore[attr-defined]
    with pytest.raises(UpstreamStatusError) as info:
        await p.chat(
            ChatRequest({"messages": [{"role": "user", "content": "x"}]}),
            _dep("openai", f"{url}/429-7/v1"),
            Credentials(),
            timeout=5,
        )
    assert info.value.upstream_status == 429 and info.value.retry_after == 7.0
    assert "fake upstream error" in (info.value.upstream_body or "")
    with pytest.raises(UpstreamError) as info2:
        await p.chat(
            ChatRequest({"messages": [{"role": "user", "content": "x"}]}),
            _dep("openai", f"{url}/garbage/v1"),
            Credentials(),
            timeout=5,
        )
    assert info2.value.code == "upstream_invalid_response"
    with pytest.raises(UpstreamError) as info3:
        await p.chat(
            ChatRequest({"messages": [{"role": "user", "content": "x"}]}),
            _dep("openai", "http://127.0.0.1:1/v1"),
            Credentials(),
            timeout=5,
        )
    assert info3.value.code == "upstream_unreachable"
    await p.aclose()


async def test_openai_compat_sends_key_and_model(fake: FakeProvider) -> None:
    p = OpenAICompatProvider(_client())
    url = fake.url  # type: ignore[attr-defined]
    await p.chat(
        ChatRequest({"messages": [{"role": "user", "content": "x"}]}),
        _dep("openai", f"{url}/ok/v1"),
        Credentials("sk-123"),
        timeout=5,
    )
    rec = fake.requests[-1]
    assert rec.headers["authorization"] == "Bearer sk-123" and rec.body["model"] == "up-model"
    await p.aclose()


async def test_azure_key_and_entra(fake: FakeProvider) -> None:
    url = fake.url  # type: ignore[attr-defined]
    calls: list[str] = []

    class Token:
        def __init__(self, token: str, expires_on: int) -> None:
            self.token, self.expires_on = token, expires_on

    class FakeCredential:
        async def get_token(self, *scopes: str) -> Token:
            calls.extend(scopes)
            return Token(f"entra-{len(calls)}", int(time.time()) + 3600)

    p = AzureOpenAIProvider(_client(), lambda _c: FakeCredential())
    body = {"messages": [{"role": "user", "content": "hi"}]}
    key_dep = _dep("azure", f"{url}/ok", model="gpt4o-prod", api_version="2024-10-21")
    r = await p.chat(ChatRequest(body), key_dep, Credentials("azkey"), timeout=5)
    assert r.body["choices"][0]["message"]["content"] == "echo: hi"
    rec = fake.requests[-1]
    assert rec.path == "/ok/openai/deployments/gpt4o-prod/chat/completions"
    assert rec.headers["api-key"] == "azkey" and "authorization" not in rec.headers
    entra = _dep("azure", f"{url}/ok", model="gpt4o-prod", auth="entra")
    await p.chat(ChatRequest(body), entra, Credentials(), timeout=5)
    chunks = await _collect(
        p.stream_chat(ChatRequest(body, stream=True), entra, Credentials(), timeout=5)
    )
    assert _text(chunks) == "echo: hi"
    assert fake.requests[-1].headers["authorization"] == "Bearer entra-1"
    assert calls == ["https://cognitiveservices.azure.com/.default"]  # cached, asked once
    await p.aclose()


async def test_anthropic_native_translation(fake: FakeProvider) -> None:
    url = fake.url  # type: ignore[attr-defined]
    p = AnthropicProvider(_client())
    dep = _dep("anthropic", f"{url}/ok", model="claude-x")
    body = {
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}],
        "tools": TOOLS,
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "stop": "END",
        "temperature": 1.7,
    }
    r = await p.chat(ChatRequest(body), dep, Credentials("ak"), timeout=5)
    sent = fake.requests[-1]
    assert sent.headers["x-api-key"] == "ak" and sent.headers["anthropic-version"]
    assert sent.body["system"] == "sys" and sent.body["max_tokens"] == 4096
    assert sent.body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert sent.body["stop_sequences"] == ["END"] and sent.body["temperature"] == 1.0
    assert sent.body["tools"][0]["input_schema"] == {"type": "object"}
    calls = r.body["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["a", "b"]
    chunks = await _collect(
        p.stream_chat(ChatRequest(body, stream=True), dep, Credentials(), timeout=5)
    )
    assert {i: orjson.loads(a) for i, a in _args(chunks).items()} == {0: {"q": "q"}, 1: {"q": "q"}}
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    mid = _dep("anthropic", f"{url}/midstream")
    with pytest.raises(UpstreamError):
        await _collect(p.stream_chat(ChatRequest(body, stream=True), mid, Credentials(), timeout=5))
    await p.aclose()


async def test_anthropic_tool_results_merge_into_user_turn(fake: FakeProvider) -> None:
    url = fake.url  # type: ignore[attr-defined]
    p = AnthropicProvider(_client())
    msgs = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
                {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "r1"},
        {"role": "tool", "tool_call_id": "c2", "content": "r2"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    await p.chat(
        ChatRequest({"messages": msgs}), _dep("anthropic", f"{url}/ok"), Credentials(), timeout=5
    )
    turns = fake.requests[-1].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][0] == {
        "type": "tool_use",
        "id": "c1",
        "name": "a",
        "input": {"x": 1},
    }
    kinds = [b["type"] for b in turns[2]["content"]]
    assert kinds == ["tool_result", "tool_result", "text", "image"]
    assert turns[2]["content"][3]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": "AAAA",
    }
    await p.aclose()


async def test_bedrock_converse_and_stream(fake: FakeProvider) -> None:
    url = fake.url  # type: ignore[attr-defined]
    p = BedrockProvider(connect_timeout=2, read_timeout=5)
    dep = _dep("bedrock", f"{url}/ok", model="anthropic.claude-3", region="eu-west-1")
    body = {
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        "max_tokens": 50,
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "b"}},
    }
    r = await p.chat(ChatRequest(body), dep, AWS, timeout=10)
    sent = fake.requests[-1]
    assert sent.path == "/ok/model/anthropic.claude-3/converse"
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert sent.body["system"] == [{"text": "s"}]
    assert sent.body["inferenceConfig"] == {"maxTokens": 50}
    assert sent.body["toolConfig"]["toolChoice"] == {"tool": {"name": "b"}}
    assert r.input_tokens == 11 and r.output_tokens == 4
    assert r.body["choices"][0]["finish_reason"] == "tool_calls"
    plain = {"messages": [{"role": "user", "content": "hi there"}]}
    chunks = await _collect(p.stream_chat(ChatRequest(plain, stream=True), dep, AWS, timeout=10))
    assert _text(chunks) == "echo: hi there"
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    tools = await _collect(p.stream_chat(ChatRequest(body, stream=True), dep, AWS, timeout=10))
    assert {i: orjson.loads(a) for i, a in _args(tools).items()} == {0: {"q": "hi"}, 1: {"q": "hi"}}
    with pytest.raises(UpstreamStatusError) as info:
        await p.chat(
            ChatRequest(plain), _dep("bedrock", f"{url}/429", region="eu-west-1"), AWS, timeout=10
        )
    assert info.value.upstream_status == 429
    with pytest.raises(UpstreamError):
        await _collect(
            p.stream_chat(
                ChatRequest(plain, stream=True),
                _dep("bedrock", f"{url}/midstream", region="eu-west-1"),
                AWS,
                timeout=10,
            )
        )
    await p.aclose()


async def _bytes(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def test_sse_parser_splits_anywhere() -> None:
    raw = b'event: a\r\ndata: {"x":1}\r\n\r\n: comment\n\ndata: line1\ndata: line2\n\ndata: tail'
    for size in (1, 2, 7, len(raw)):
        parts = [raw[i : i + size] for i in range(0, len(raw), size)]
        out = [e async for e in iter_sse(_bytes(parts))]
        assert out == [("a", b'{"x":1}'), ("", b"line1\nline2"), ("", b"tail")]


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
