"""The pipeline with the real guard, quotas, kill switches, usage and audit."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from opsgate.gateway.usage.models import UsageRow
from tests.gateway.conftest import GatewayEnv, MakeGateway

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRET_PROMPT = f"deploy with aws_access_key_id={AWS_KEY} aws_secret_access_key={AWS_SECRET}"


async def _usage_rows(gw: GatewayEnv) -> list[UsageRow]:
    rt = gw.runtime
    if getattr(rt, "usage", None) is not None:
        await rt.usage.flush()
    async with rt.db.session("default") as s:
        return list((await s.execute(select(UsageRow))).scalars())


async def test_restricted_prompt_goes_in_tenant_only_and_redacted(gw: GatewayEnv) -> None:
    resp = await gw.openai().chat.completions.with_raw_response.create(
        model="tenant-chat", messages=[{"role": "user", "content": SECRET_PROMPT}]
    )
    assert resp.headers["x-opsgate-route"] == "tenant-chat->local"
    sent = gw.fake.requests[-1].body["messages"][0]["content"]
    assert AWS_KEY not in sent and AWS_SECRET not in sent
    ev = gw.audit[-1]
    assert ev.payload["classification"] == "restricted"
    assert "ext:external" in ev.payload["route"]["skipped"]
    assert AWS_KEY not in str(ev.payload) and AWS_SECRET not in str(ev.payload)


async def test_restricted_refused_without_in_tenant_deployment(gw: GatewayEnv) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        await gw.openai().chat.completions.create(
            model="external-only", messages=[{"role": "user", "content": SECRET_PROMPT}]
        )
    assert info.value.code == "route_refused"
    assert "restricted" in info.value.message
    assert gw.fake.requests == []  # nothing left the building
    assert gw.audit[-1].outcome == "denied"


async def test_pseudonyms_restored_in_response_and_stream(gw: GatewayEnv) -> None:
    email = "jane.doe@example.com"
    prompt = f"write to {email}"
    r = await gw.openai().chat.completions.create(
        model="ops-default", messages=[{"role": "user", "content": prompt}]
    )
    upstream = gw.fake.requests[-1].body["messages"][0]["content"]
    assert email not in upstream  # the provider saw a placeholder
    assert r.choices[0].message.content == f"echo: {prompt}"  # the client sees the original
    stream = await gw.openai().chat.completions.create(
        model="ops-default", messages=[{"role": "user", "content": prompt}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == f"echo: {prompt}"
    assert email not in gw.fake.requests[-1].body["messages"][0]["content"]


async def test_quota_rpm_429_with_retry_after(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(quota={"defaults": {"key": {"rpm": 2}}})
    client = gw.openai()
    msgs: Any = [{"role": "user", "content": "x"}]
    for _ in range(2):
        await client.chat.completions.create(model="ops-default", messages=msgs)
    async with httpx.AsyncClient(base_url=gw.url) as c:
        r = await c.post(
            "/v1/chat/completions",
            headers=gw.headers(),
            json={"model": "ops-default", "messages": msgs},
        )
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(gw.fake.requests) == 2
    assert gw.audit[-1].outcome == "denied"


async def test_quota_concurrency_released_after_failures(make_gateway: MakeGateway) -> None:
    """Failed calls (upstream 5xx, mid-stream close, client disconnect) free their slot."""
    gw = await make_gateway(quota={"defaults": {"key": {"concurrency": 1}}})
    client = gw.openai()
    msgs: Any = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="garbage-chat", messages=msgs)
    stream = await client.chat.completions.create(
        model="midstream-chat", messages=msgs, stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    # the slot is free again: this one is admitted
    r = await client.chat.completions.create(model="ops-default", messages=msgs)
    assert r.choices[0].message.content == "echo: x"


async def test_usage_and_audit_consistent(gw: GatewayEnv) -> None:
    client = gw.openai()
    msgs: Any = [{"role": "user", "content": "a b c"}]
    await client.chat.completions.create(model="ops-default", messages=msgs)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="nope", messages=msgs)
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="garbage-chat", messages=msgs)
    rows = await _usage_rows(gw)
    if getattr(gw.runtime, "usage", None) is None:
        pytest.skip("usage recording is off")
    by_model = {r.model: r for r in rows}
    ok = by_model["ops-default"]
    assert (ok.tokens_in, ok.tokens_out, ok.status, ok.deployment) == (3, 4, "success", "primary")
    assert ok.cost == pytest.approx((3 * 1.0 + 4 * 2.0) / 1e6)
    assert by_model["garbage-chat"].status == "upstream_failed"
    assert "nope" not in by_model  # refused before admission: audited, not a usage row
    models = [e.resource for e in gw.audit if e.action == "model.chat"]
    assert models == ["model:ops-default", "model:nope", "model:garbage-chat"]


async def test_kill_switch_model_and_deployment(gw: GatewayEnv) -> None:
    ks = getattr(gw.runtime, "killswitches", None)
    if ks is None:
        pytest.skip("kill switches are not running")
    msgs: Any = [{"role": "user", "content": "x"}]
    await ks.kill("model", "ops-default", actor="test", reason="incident 42")
    with pytest.raises(openai.InternalServerError) as info:
        await gw.openai().chat.completions.create(model="ops-default", messages=msgs)
    assert info.value.status_code == 503 and "incident 42" in info.value.message
    await ks.kill("deployment", "rl", actor="test", reason="bad region")
    resp = await gw.openai().chat.completions.with_raw_response.create(
        model="fallback-chat", messages=msgs
    )
    assert resp.headers["x-opsgate-route"] == "fallback-chat->good;fallback-from=boom:500"
    assert "rl:killed" in gw.audit[-1].payload["route"]["skipped"]
    assert not any(r.path.startswith("/429/") for r in gw.fake.requests)


async def test_metrics_and_genai_span(gw: GatewayEnv) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    gw.runtime.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    await gw.openai().chat.completions.create(
        model="fallback-chat", messages=[{"role": "user", "content": "hello"}], max_tokens=9
    )
    await asyncio.sleep(0.05)
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.attributes and s.attributes.get("gen_ai.operation.name") == "chat"
    ]
    assert spans
    a = spans[-1].attributes or {}
    assert a["gen_ai.request.model"] == "fallback-chat"
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.response.model"] == "up-good"
    assert a["gen_ai.usage.input_tokens"] == 1 and a["gen_ai.usage.output_tokens"] == 2
    assert a["gen_ai.request.max_tokens"] == 9
    text = gw.runtime.metrics.render().decode()
    for line in (
        'opsgate_gateway_requests_total{deployment="good",model="fallback-chat",status="200"} 1.0',
        'opsgate_gateway_tokens_total{deployment="good",direction="output",'
        'model="fallback-chat"} 2.0',
        'opsgate_gateway_breaker_state{deployment="rl"} 0.0',
        'opsgate_gateway_fallbacks_total{deployment="boom",model="fallback-chat",reason="500"} 1.0',
    ):
        assert line in text, line
    assert "opsgate_gateway_request_duration_seconds_bucket" in text
    assert "opsgate_gateway_cost_usd_total" in text


async def test_breaker_opens_and_shows_in_health(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(breaker={"failure_threshold": 2, "cooldown_seconds": 60})
    msgs: Any = [{"role": "user", "content": "x"}]
    for _ in range(2):
        await gw.openai().chat.completions.create(model="fallback-chat", messages=msgs)
    resp = await gw.openai().chat.completions.with_raw_response.create(
        model="fallback-chat", messages=msgs
    )
    # both failing deployments are open now: skipped, not tried
    assert resp.headers["x-opsgate-route"] == "fallback-chat->good"
    async with httpx.AsyncClient(base_url=gw.url) as c:
        h = await c.get("/api/v1/gateway/deployments", headers=gw.headers(roles="admin"))
        denied = await c.get("/api/v1/gateway/deployments", headers=gw.headers())
    assert h.json()["deployments"]["rl"]["state"] == "open"
    assert denied.status_code == 403
    assert (
        'opsgate_gateway_breaker_state{deployment="rl"} 2.0' in gw.runtime.metrics.render().decode()
    )


async def test_policy_decides_model_access_and_caps_tokens(gw: GatewayEnv) -> None:
    """The default bundle: confidential-chat for operators only, with max_tokens 4096."""
    msgs: Any = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.PermissionDeniedError) as info:
        await gw.openai().chat.completions.create(model="confidential-chat", messages=msgs)
    assert "no rule grants model.invoke" in info.value.message
    await gw.openai(roles="operator").chat.completions.create(
        model="confidential-chat", messages=msgs, max_tokens=100_000
    )
    assert gw.fake.requests[-1].body["max_tokens"] == 4096
    policy = gw.audit[-1].payload["policy"]
    assert policy["allow"] is True and policy["bundle_revision"]
    assert policy["obligations"]["max_tokens"] == 4096
    assert "max_tokens capped at 4096 by policy" in gw.audit[-1].payload["decisions"]
