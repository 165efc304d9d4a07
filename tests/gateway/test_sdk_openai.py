"""The unmodified `openai` SDK against OpsGate served over real HTTP."""

from __future__ import annotations

import base64
import struct

import openai
import orjson
import pytest

from tests.gateway.conftest import GatewayEnv

TOOLS = [
    {"type": "function", "function": {"name": "get_pod", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_node", "parameters": {"type": "object"}}},
]


async def test_chat_non_streaming(gw: GatewayEnv) -> None:
    client = gw.openai()
    resp = await client.chat.completions.with_raw_response.create(
        model="ops-default", messages=[{"role": "user", "content": "hello there"}]
    )
    completion = resp.parse()
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.model == "ops-default"
    assert completion.usage is not None and completion.usage.prompt_tokens == 2
    assert resp.headers["x-opsgate-route"] == "ops-default->primary"
    # the upstream got its own model id, never the client's
    assert gw.fake.requests[-1].body["model"] == "up-primary"
    assert gw.fake.requests[-1].path == "/ok/v1/chat/completions"


async def test_chat_streaming_with_usage(gw: GatewayEnv) -> None:
    client = gw.openai()
    stream = await client.chat.completions.create(
        model="ops-default",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "echo: one two three"
    assert usage is not None and usage.prompt_tokens == 3 and usage.completion_tokens == 4


async def test_stream_without_include_usage_has_no_usage_chunk(gw: GatewayEnv) -> None:
    client = gw.openai()
    stream = await client.chat.completions.create(
        model="ops-default", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    # ... yet the gateway fetched usage upstream for accounting
    assert gw.fake.requests[-1].body["stream_options"] == {"include_usage": True}
    ev = gw.audit[-1]
    assert ev.payload["input_tokens"] == 1 and ev.payload["output_tokens"] == 2


async def test_parallel_tool_calls(gw: GatewayEnv) -> None:
    client = gw.openai()
    completion = await client.chat.completions.create(
        model="ops-default", messages=[{"role": "user", "content": "status"}], tools=TOOLS
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert [c.function.name for c in calls] == ["get_pod", "get_node"]
    assert orjson.loads(calls[0].function.arguments) == {"q": "status"}
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_streamed_tool_call_deltas(gw: GatewayEnv) -> None:
    client = gw.openai()
    stream = await client.chat.completions.create(
        model="ops-default",
        messages=[{"role": "user", "content": "status"}],
        tools=TOOLS,
        stream=True,
    )
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    deltas = 0
    async for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or []:
            deltas += 1
            if tc.function and tc.function.name:
                names[tc.index] = tc.function.name
            args[tc.index] = args.get(tc.index, "") + (
                (tc.function and tc.function.arguments) or ""
            )
    assert names == {0: "get_pod", 1: "get_node"}
    assert {i: orjson.loads(a) for i, a in args.items()} == {0: {"q": "status"}, 1: {"q": "status"}}
    assert deltas == 6  # start + two argument fragments per call, passed through one by one


async def test_stream_helper_accumulates(gw: GatewayEnv) -> None:
    client = gw.openai()
    async with client.chat.completions.stream(
        model="ops-default", messages=[{"role": "user", "content": "abc"}]
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "echo: abc"


async def test_json_mode(gw: GatewayEnv) -> None:
    client = gw.openai()
    completion = await client.chat.completions.create(
        model="ops-default",
        messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_object"},
    )
    assert orjson.loads(completion.choices[0].message.content or "") == {"echo": "x"}
    assert gw.fake.requests[-1].body["response_format"] == {"type": "json_object"}


async def test_embeddings_default_base64(gw: GatewayEnv) -> None:
    client = gw.openai()
    resp = await client.embeddings.create(model="embed", input=["abc", "de"])
    assert [d.embedding for d in resp.data] == [[3.0, 0.0, 0.5], [2.0, 1.0, 0.5]]
    assert resp.model == "embed"
    raw = await client.embeddings.create(model="embed", input="abcd", encoding_format="base64")
    vec = raw.data[0].embedding
    if isinstance(vec, str):
        vec = list(struct.unpack("<3f", base64.b64decode(vec)))
    assert vec == [4.0, 0.0, 0.5]


async def test_models_list_only_allowed(gw: GatewayEnv) -> None:
    user_ids = {m.id async for m in gw.openai(roles="user").models.list()}
    admin_ids = {m.id async for m in gw.openai(roles="admin").models.list()}
    assert "confidential-chat" not in user_ids and "ops-default" in user_ids
    assert "confidential-chat" in admin_ids
    scoped = {m.id async for m in gw.openai(roles="user", scopes="model:ops-*").models.list()}
    assert scoped == {"ops-default"}
    model = await gw.openai().models.retrieve("ops-default")
    assert model.id == "ops-default"
    with pytest.raises(openai.NotFoundError):
        await gw.openai().models.retrieve("confidential-chat")


async def test_vendor_params_pass_through(gw: GatewayEnv) -> None:
    await gw.openai().chat.completions.create(
        model="ops-default",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"top_k": 5, "repetition_penalty": 1.1},
    )
    sent = gw.fake.requests[-1].body
    assert sent["top_k"] == 5 and sent["repetition_penalty"] == 1.1
