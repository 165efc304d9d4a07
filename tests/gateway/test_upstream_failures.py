"""Upstream failures: fallback before the first byte, terminal error events after it,
429 storms, timeouts, garbage, and the client disconnect cancelling the upstream call."""

from __future__ import annotations

import asyncio

import httpx
import openai
import orjson
import pytest

from tests.fakes.provider import FakeProvider
from tests.gateway.conftest import GatewayEnv, MakeGateway, dep

MSG = [{"role": "user", "content": "hi"}]


async def test_fallback_on_429_and_500(gw: GatewayEnv) -> None:
    resp = await gw.openai().chat.completions.with_raw_response.create(
        model="fallback-chat",
        messages=MSG,  # type: ignore[arg-type]
    )
    assert resp.parse().choices[0].message.content == "echo: hi"
    assert resp.headers["x-opsgate-route"] == "fallback-chat->good;fallback-from=rl:429,boom:500"
    ev = gw.audit[-1]
    assert ev.outcome == "success"
    assert ev.payload["route"]["failed_attempts"] == ["rl:429", "boom:500"]
    metrics = gw.runtime.metrics.render().decode()
    assert (
        'opsgate_gateway_fallbacks_total{deployment="rl",model="fallback-chat",reason="429"} 1.0'
        in metrics
    )


async def test_streaming_fallback_before_first_byte(gw: GatewayEnv) -> None:
    resp = await gw.openai().chat.completions.with_raw_response.create(
        model="fallback-chat",
        messages=MSG,
        stream=True,  # type: ignore[arg-type]
    )
    assert resp.headers["x-opsgate-route"].startswith("fallback-chat->good")
    text = "".join([c.choices[0].delta.content or "" async for c in resp.parse()])
    assert text == "echo: hi"


async def test_429_storm_returns_429_with_retry_after(gw: GatewayEnv) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as c:
        r = await c.post(
            "/v1/chat/completions", headers=gw.headers(), json={"model": "all-429", "messages": MSG}
        )
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "upstream_rate_limited"
    assert r.headers["x-opsgate-route"] == "all-429->none;fallback-from=rl1:429,rl2:429"
    assert gw.audit[-1].outcome == "denied"


async def test_retry_same_deployment_with_backoff(
    make_gateway: MakeGateway, fake: FakeProvider
) -> None:
    url = fake.url  # type: ignore[attr-defined]
    gw = await make_gateway(
        {"m": {"deployments": [dep("flaky", url, "flaky-2")]}},
        retry={"attempts_per_deployment": 3, "backoff_base_seconds": 0.01},
    )
    resp = await gw.openai().chat.completions.with_raw_response.create(
        model="m",
        messages=MSG,  # type: ignore[arg-type]
    )
    assert resp.headers["x-opsgate-route"] == "m->flaky;fallback-from=flaky:503,flaky:503"


async def test_upstream_garbage_is_502(gw: GatewayEnv) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        await gw.openai().chat.completions.create(model="garbage-chat", messages=MSG)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert "fake" not in str(info.value.body)  # upstream bodies never reach clients
    assert gw.audit[-1].outcome == "error"


async def _raw_stream(gw: GatewayEnv, model: str) -> list[bytes]:
    events: list[bytes] = []
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as c,
        c.stream(
            "POST",
            "/v1/chat/completions",
            headers=gw.headers(),
            json={"model": model, "messages": MSG, "stream": True},
        ) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                events.append(line[6:].encode())
    return events


async def test_midstream_close_ends_with_error_event_and_no_fallback(gw: GatewayEnv) -> None:
    events = await _raw_stream(gw, "midstream-chat")
    assert orjson.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    last = orjson.loads(events[-1])
    assert last["error"]["code"] == "upstream_disconnected"
    assert b"[DONE]" not in events
    # no silent fallback after the first byte: the spare deployment was never called
    assert [r.path for r in gw.fake.requests] == ["/midstream/v1/chat/completions"]
    ev = gw.audit[-1]
    assert ev.payload["result"] == "stream_error" and ev.outcome == "failure"


async def test_midstream_error_surfaces_in_sdk(gw: GatewayEnv) -> None:
    stream = await gw.openai().chat.completions.create(
        model="midstream-chat",
        messages=MSG,
        stream=True,  # type: ignore[arg-type]
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


async def test_stream_garbage_after_first_byte(gw: GatewayEnv) -> None:
    events = await _raw_stream(gw, "garbage-chat")
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_invalid_response"


async def test_upstream_timeout_is_504(gw: GatewayEnv) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as c:
        r = await c.post(
            "/v1/chat/completions",
            headers=gw.headers(),
            json={"model": "hang-chat", "messages": MSG},
        )
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    await asyncio.sleep(0.2)
    assert "hang" in gw.fake.cancelled  # the upstream saw the call abandoned


async def test_client_disconnect_cancels_upstream_stream(gw: GatewayEnv) -> None:
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as c,
        c.stream(
            "POST",
            "/v1/chat/completions",
            headers=gw.headers(),
            json={"model": "drip-chat", "messages": MSG, "stream": True},
        ) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                break  # got the first chunk; now hang up
    for _ in range(100):
        if "drip" in gw.fake.cancelled:
            break
        await asyncio.sleep(0.02)
    assert "drip" in gw.fake.cancelled
    for _ in range(50):
        if gw.audit and gw.audit[-1].payload.get("result") == "client_disconnected":
            break
        await asyncio.sleep(0.02)
    assert gw.audit[-1].payload["result"] == "client_disconnected"


async def test_client_disconnect_cancels_non_streamed_call(
    make_gateway: MakeGateway, fake: FakeProvider
) -> None:
    fake_url = fake.url  # type: ignore[attr-defined]
    gw = await make_gateway({"slow": {"deployments": [dep("h", fake_url, "hang")]}})

    async def call() -> None:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as c:
            await c.post(
                "/v1/chat/completions",
                headers=gw.headers(),
                json={"model": "slow", "messages": MSG},
            )

    # Drop the client only once the upstream holds the request, so a slow machine
    # cannot turn this into a disconnect before the gateway read the body.
    task = asyncio.create_task(call())
    for _ in range(500):
        if any(r.path.startswith("/hang/") for r in gw.fake.requests):
            break
        await asyncio.sleep(0.01)
    assert any(r.path.startswith("/hang/") for r in gw.fake.requests)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if "hang" in gw.fake.cancelled:
            break
        await asyncio.sleep(0.02)
    assert "hang" in gw.fake.cancelled
    for _ in range(50):
        if gw.audit:
            break
        await asyncio.sleep(0.02)
    assert gw.audit[-1].payload["result"] == "client_disconnected"


async def test_upstream_400_is_the_requests_fault_no_fallback(
    make_gateway: MakeGateway, fake: FakeProvider
) -> None:
    fake_url = fake.url  # type: ignore[attr-defined]
    gw = await make_gateway(
        {"m": {"deployments": [dep("bad", fake_url, "400"), dep("never", fake_url)]}}
    )
    with pytest.raises(openai.BadRequestError) as info:
        await gw.openai().chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
    assert info.value.code == "upstream_rejected_request"
    assert "fake upstream error 400" in info.value.message
    assert [r.path for r in gw.fake.requests] == ["/400/v1/chat/completions"]


async def test_messages_stream_midstream_error_event(gw: GatewayEnv) -> None:
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as c,
        c.stream(
            "POST",
            "/v1/messages",
            headers=gw.headers(),
            json={
                "model": "midstream-chat",
                "max_tokens": 10,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as r,
    ):
        assert r.status_code == 200
        body = (await r.aread()).decode()
    events = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "error"
    assert "message_stop" not in events
    last = orjson.loads(body.strip().splitlines()[-1][6:])
    assert last["type"] == "error" and last["error"]["type"] == "api_error"


async def test_fallback_on_connect_error_and_timeout(
    make_gateway: MakeGateway, fake: FakeProvider
) -> None:
    url = fake.url  # type: ignore[attr-defined]
    gw = await make_gateway(
        {
            "m": {
                "deployments": [
                    {
                        "name": "dead",
                        "provider": "openai",
                        "base_url": "http://127.0.0.1:1/v1",
                        "model": "x",
                    },
                    dep("slow", url, "hang", timeout_seconds=0.3),
                    dep("good", url),
                ]
            }
        }
    )
    resp = await gw.openai().chat.completions.with_raw_response.create(
        model="m",
        messages=MSG,  # type: ignore[arg-type]
    )
    assert resp.headers["x-opsgate-route"] == "m->good;fallback-from=dead:unreachable,slow:timeout"
    assert resp.parse().choices[0].message.content == "echo: hi"
