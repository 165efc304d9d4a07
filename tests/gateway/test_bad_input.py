"""Bad client input: precise errors, nothing sent upstream, audit consistent."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway.conftest import GatewayEnv, MakeGateway

MSG = [{"role": "user", "content": "x"}]


async def _post(gw: GatewayEnv, body: bytes | dict[str, object], **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as c:
        if isinstance(body, bytes):
            return await c.post(
                "/v1/chat/completions",
                content=body,
                headers={**gw.headers(), "content-type": "application/json"},
            )
        return await c.post("/v1/chat/completions", json=body, headers=gw.headers())


async def test_malformed_json(gw: GatewayEnv) -> None:
    r = await _post(gw, b'{"model": "ops-default", "messages": [')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"
    assert gw.fake.requests == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "ops-default", "messages": "hello"}, "messages"),
        ({"model": "ops-default", "messages": MSG, "temperature": "hot"}, "temperature"),
        ({"model": "ops-default", "messages": MSG, "stream": "yes"}, "stream"),
        (
            {"model": "ops-default", "messages": [{"role": "wizard", "content": "x"}]},
            "messages.0.role",
        ),
        ({"model": 42, "messages": MSG}, "model"),
        ({"messages": MSG}, "model"),
        (
            {"model": "ops-default", "messages": MSG, "response_format": {"type": "yaml"}},
            "response_format.type",
        ),
        (
            {
                "model": "ops-default",
                "messages": MSG,
                "tools": [{"type": "function", "function": {"name": "a", "evil": 1}}],
            },
            "tools.0.function.evil",
        ),
    ],
)
async def test_wrong_types(gw: GatewayEnv, body: dict[str, object], param: str) -> None:
    r = await _post(gw, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert gw.fake.requests == []


async def test_body_not_an_object(gw: GatewayEnv) -> None:
    r = await _post(gw, b"[1, 2]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "field", ["api_base", "base_url", "api_key", "extra_headers", "custom_llm_provider"]
)
async def test_upstream_redirect_fields_refused(gw: GatewayEnv, field: str) -> None:
    """SSRF: no client field may choose the upstream, its URL, headers or credentials."""
    r = await _post(gw, {"model": "ops-default", "messages": MSG, field: "http://10.0.0.1/"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "forbidden_parameter"
    assert r.json()["error"]["param"] == field
    assert gw.fake.requests == []


async def test_unknown_model_404(gw: GatewayEnv) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await gw.openai().chat.completions.create(model="nope", messages=MSG)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"
    ev = gw.audit[-1]
    assert ev.outcome == "denied" and ev.resource == "model:nope"


async def test_model_not_allowed_403(gw: GatewayEnv) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        await gw.openai(roles="user").chat.completions.create(
            model="confidential-chat",
            messages=MSG,  # type: ignore[arg-type]
        )
    assert info.value.code == "model_not_allowed"
    assert gw.fake.requests == []
    assert gw.audit[-1].outcome == "denied"


async def test_scoped_key_outside_scope_403(gw: GatewayEnv) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        await gw.openai(scopes="model:embed").chat.completions.create(
            model="ops-default",
            messages=MSG,  # type: ignore[arg-type]
        )


async def test_wrong_model_kind(gw: GatewayEnv) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await gw.openai().chat.completions.create(model="embed", messages=MSG)  # type: ignore[arg-type]
    assert info.value.code == "wrong_model_kind"


async def test_oversized_body_413(make_gateway: MakeGateway, make_settings: object) -> None:
    gw = await make_gateway()
    limit = gw.runtime.settings.server.max_body_bytes
    big = {"model": "ops-default", "messages": [{"role": "user", "content": "a" * (limit + 10)}]}
    r = await _post(gw, big)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert gw.fake.requests == []


async def test_unauthenticated_401(gw: GatewayEnv) -> None:
    client = openai.AsyncOpenAI(api_key="garbage", base_url=f"{gw.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="ops-default", messages=MSG)  # type: ignore[arg-type]
    assert gw.fake.requests == []


async def test_tools_on_model_without_tool_capability(make_gateway: MakeGateway) -> None:
    url = "http://127.0.0.1:9"
    gw = await make_gateway(
        {
            "plain": {
                "deployments": [
                    {
                        "name": "p",
                        "provider": "openai",
                        "base_url": url,
                        "model": "m",
                        "capabilities": ["chat"],
                    }
                ]
            }
        }
    )
    r = await _post(
        gw,
        {
            "model": "plain",
            "messages": MSG,
            "tools": [{"type": "function", "function": {"name": "t"}}],
        },
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_capability"
