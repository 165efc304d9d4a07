"""SECURITY.md: a canary provider key and a canary prompt secret sent through every gateway
path never appear in logs, usage rows, audit payloads or spans."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from opsgate.audit.models import AuditEvent
from opsgate.gateway.usage.models import UsageRow
from tests.fakes.provider import FakeProvider
from tests.gateway.conftest import MakeGateway, dep

PROVIDER_KEY = "sk-canary-PROVIDER-9f3b1c7e2d"
PROMPT_CANARY = "CANARY-PROMPT-4b8e0a61"


async def test_canaries_never_leak(
    make_gateway: MakeGateway, fake: FakeProvider, capfd: pytest.CaptureFixture[str]
) -> None:
    url = fake.url  # type: ignore[attr-defined]
    keyed = {"api_key": "secret://canary"}
    gw = await make_gateway(
        {
            "keyed": {"deployments": [dep("k-ok", url, **keyed)]},
            "keyed-fallback": {
                "deployments": [dep("k-500", url, "500", **keyed), dep("k-ok2", url, **keyed)]
            },
            "keyed-cut": {"deployments": [dep("k-cut", url, "midstream", **keyed)]},
            "keyed-claude": {"deployments": [dep("k-claude", url, provider="anthropic", **keyed)]},
        },
    )
    await gw.runtime.vault.put("default", "canary", PROVIDER_KEY, actor="test")
    exporter = InMemorySpanExporter()
    gw.runtime.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = gw.openai()
    msgs: Any = [{"role": "user", "content": f"remember {PROMPT_CANARY} please"}]

    await client.chat.completions.create(model="keyed", messages=msgs)
    await client.chat.completions.create(model="keyed-fallback", messages=msgs)
    stream = await client.chat.completions.create(
        model="keyed", messages=msgs, stream=True, stream_options={"include_usage": True}
    )
    [c async for c in stream]
    cut = await client.chat.completions.create(model="keyed-cut", messages=msgs, stream=True)
    with pytest.raises(openai.APIError):
        [c async for c in cut]
    await gw.anthropic().messages.create(model="keyed-claude", max_tokens=5, messages=msgs)
    async with httpx.AsyncClient(base_url=gw.url) as c:
        await c.post(
            "/v1/chat/completions",
            headers=gw.headers(),
            json={"model": "keyed", "messages": msgs, "api_key": PROVIDER_KEY},
        )

    # the key was really used upstream ...
    assert gw.fake.requests[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert any(r.headers.get("x-api-key") == PROVIDER_KEY for r in gw.fake.requests)
    # ... and is nowhere else
    rt = gw.runtime
    await rt.audit.flush()
    if getattr(rt, "usage", None) is not None:
        await rt.usage.flush()
    async with rt.db.session("default") as s:
        usage = [repr(r.__dict__) for r in (await s.execute(select(UsageRow))).scalars()]
        audit_rows = [bytes(r.data) for r in (await s.execute(select(AuditEvent))).scalars()]
    assert usage and audit_rows
    spans = [repr(dict(sp.attributes or {})) + sp.name for sp in exporter.get_finished_spans()]
    assert spans
    tapped = [repr(e) for e in gw.audit]
    out, err = capfd.readouterr()
    for canary in (PROVIDER_KEY, PROMPT_CANARY):
        for where, items in (
            ("usage", usage),
            ("audit", tapped),
            ("spans", spans),
            ("logs", [out, err]),
        ):
            assert not any(canary in i for i in items), f"{canary} leaked into {where}"
        assert not any(canary.encode() in row for row in audit_rows), "durable audit"
