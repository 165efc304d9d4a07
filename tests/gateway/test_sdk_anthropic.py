"""The unmodified `anthropic` SDK against `/v1/messages`, translated to any provider."""

from __future__ import annotations

import anthropic
import pytest

from tests.gateway.conftest import GatewayEnv

TOOLS = [
    {"name": "get_pod", "description": "a pod", "input_schema": {"type": "object"}},
    {"name": "get_node", "description": "a node", "input_schema": {"type": "object"}},
]


async def test_messages_to_openai_upstream(gw: GatewayEnv) -> None:
    client = gw.anthropic()
    msg = await client.messages.create(
        model="ops-default",
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": "hello"}],
    )
    assert msg.content[0].type == "text" and msg.content[0].text == "echo: hello"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 3 and msg.usage.output_tokens == 2
    sent = gw.fake.requests[-1]
    assert sent.path == "/ok/v1/chat/completions"  # an OpenAI-compatible upstream
    assert sent.body["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent.body["max_tokens"] == 100


async def test_messages_tool_use_round_trip(gw: GatewayEnv) -> None:
    client = gw.anthropic()
    msg = await client.messages.create(
        model="ops-default",
        max_tokens=100,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "check"}],
    )
    assert msg.stop_reason == "tool_use"
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["get_pod", "get_node"]
    assert uses[0].input == {"q": "check"}
    # send the tool results back: they become OpenAI tool messages upstream
    follow = await client.messages.create(
        model="ops-default",
        max_tokens=100,
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "none"},
        messages=[
            {"role": "user", "content": "check"},
            {"role": "assistant", "content": [u.model_dump() for u in uses]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": uses[0].id, "content": "pod ok"},
                    {"type": "tool_result", "tool_use_id": uses[1].id, "content": "node ok"},
                    {"type": "text", "text": "summarise"},
                ],
            },
        ],
    )
    assert follow.content[0].type == "text"
    sent = gw.fake.requests[-1].body["messages"]
    assert sent[1]["role"] == "assistant" and len(sent[1]["tool_calls"]) == 2
    assert sent[2] == {"role": "tool", "tool_call_id": uses[0].id, "content": "pod ok"}
    assert sent[3]["role"] == "tool" and sent[4] == {"role": "user", "content": "summarise"}


async def test_messages_stream_text(gw: GatewayEnv) -> None:
    client = gw.anthropic()
    kinds: list[str] = []
    async with client.messages.stream(
        model="ops-default", max_tokens=50, messages=[{"role": "user", "content": "a b"}]
    ) as stream:
        async for event in stream:
            kinds.append(event.type)
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "echo: a b"
    assert final.usage.output_tokens == 3
    assert kinds[0] == "message_start" and "content_block_start" in kinds
    assert kinds[-1] == "message_stop"


async def test_messages_stream_tool_use_input_json_delta(gw: GatewayEnv) -> None:
    client = gw.anthropic()
    partial = 0
    async with client.messages.stream(
        model="ops-default",
        max_tokens=50,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "go"}],
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial += 1
        final = await stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [
        ("get_pod", {"q": "go"}),
        ("get_node", {"q": "go"}),
    ]
    assert partial == 4
    assert final.stop_reason == "tool_use"


async def test_messages_to_native_anthropic_upstream(gw: GatewayEnv) -> None:
    client = gw.anthropic()
    msg = await client.messages.create(
        model="claude", max_tokens=10, messages=[{"role": "user", "content": "yo"}]
    )
    assert msg.content[0].type == "text" and msg.content[0].text == "echo: yo"
    assert gw.fake.requests[-1].path == "/ok/v1/messages"
    assert gw.fake.requests[-1].body["model"] == "up-claude-up"


async def test_messages_unknown_field_refused(gw: GatewayEnv) -> None:
    client = gw.anthropic()
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(
            model="ops-default",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"api_base": "http://169.254.169.254"},
        )
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert gw.fake.requests == []


async def test_messages_not_allowed_is_permission_error(gw: GatewayEnv) -> None:
    with pytest.raises(anthropic.PermissionDeniedError):
        await gw.anthropic().messages.create(
            model="confidential-chat", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
