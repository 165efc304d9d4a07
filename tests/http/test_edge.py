"""Health, error shapes, Host/Origin guard, body limit, request ids."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from tests.conftest import AppHarness


async def test_healthz(client: AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert len(r.headers["x-request-id"]) >= 16
    assert len(r.headers["x-trace-id"]) == 32


async def test_readyz_checks_database(client: AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["database"] == "ok"


async def test_readyz_false_when_draining(harness: AppHarness) -> None:
    harness.runtime.draining = True
    r = await harness.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["draining"] is True


async def test_metrics_exposed(client: AsyncClient) -> None:
    await client.get("/healthz")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert 'opsgate_http_requests_total{method="GET",route="/healthz",status="200"}' in r.text


async def test_request_id_propagated_when_valid(client: AsyncClient) -> None:
    r = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"x-request-id": "bad id\x01"})
    assert r.headers["x-request-id"] != "bad id\x01"


async def test_traceparent_continued(client: AsyncClient) -> None:
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = await client.get("/healthz", headers={"traceparent": tp})
    assert r.headers["x-trace-id"] == "0af7651916cd43dd8448eb211c80319c"


async def test_unknown_api_path_is_problem_json(client: AsyncClient) -> None:
    r = await client.get("/api/v1/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 404 and body["instance"] == "/api/v1/nope"


async def test_unknown_v1_path_is_openai_shape(client: AsyncClient) -> None:
    r = await client.get("/v1/nope")
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


async def test_foreign_host_refused(client: AsyncClient) -> None:
    r = await client.get("/api/v1/anything", headers={"host": "evil.example"})
    assert r.status_code == 403
    assert r.json()["code"] == "bad_host"
    r = await client.get("/mcp", headers={"host": "attacker.test:8080"})
    assert r.status_code == 403


async def test_health_open_to_any_host(client: AsyncClient) -> None:
    r = await client.get("/healthz", headers={"host": "10.1.2.3:8080"})
    assert r.status_code == 200


async def test_foreign_origin_refused(client: AsyncClient) -> None:
    r = await client.get("/api/v1/x", headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert r.json()["code"] == "bad_origin"
    r = await client.get("/api/v1/x", headers={"origin": "null"})
    assert r.status_code == 403
    # same-origin browser requests pass the guard (and then 404 here)
    r = await client.get("/api/v1/x", headers={"origin": "http://testserver"})
    assert r.status_code == 404


async def test_oversized_body_413_declared(client: AsyncClient, harness: AppHarness) -> None:
    limit = harness.runtime.settings.server.max_body_bytes
    r = await client.post("/api/v1/x", content=b"x" * (limit + 1))
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


async def test_oversized_body_413_streamed() -> None:
    """A chunked body without Content-Length is cut off once it passes the limit."""
    from httpx import ASGITransport
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from opsgate.http.guards import BodyLimit

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = BodyLimit(Starlette(routes=[Route("/v1/x", echo, methods=["POST"])]), max_bytes=100_000)

    async def gen():  # type: ignore[no-untyped-def]
        for _ in range(4):
            yield b"y" * 65536

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/v1/x", content=gen())
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        r = await c.post("/v1/x", content=b"z" * 1000)
        assert r.status_code == 200 and r.text == "1000"


async def test_operation_ids_unique_and_stable(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ids = [op["operationId"] for p in spec["paths"].values() for op in p.values()]
    assert len(ids) == len(set(ids))
    assert "healthz" in ids


async def test_metrics_can_be_disabled(make_settings: object) -> None:
    from asgi_lifespan import LifespanManager
    from httpx import ASGITransport

    from opsgate.app import create_app
    from tests.conftest import migrated

    s = make_settings(telemetry={"metrics_enabled": False})  # type: ignore[operator]
    await migrated(s)
    app = create_app(s)
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c,
    ):
        assert (await c.get("/metrics")).status_code == 404


async def test_logs_are_json_with_request_and_trace_ids(
    harness: AppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from opsgate.telemetry.logging import _Handler

    caplog.set_level(logging.INFO)
    h = harness
    created = (await h.client.post("/api/v1/keys", json={"name": "x"}, headers=h.auth())).json()
    r = await h.client.delete(
        f"/api/v1/keys/{created['id']}", headers={**h.auth(), "x-request-id": "req-logtest-1"}
    )
    assert r.status_code == 204
    [record] = [
        rec
        for rec in caplog.records
        if isinstance(rec.msg, dict) and rec.msg.get("event") == "api key revoked"
    ]
    # rendered exactly as our handler writes it to stderr: one JSON object per line
    handler = next(x for x in logging.getLogger().handlers if isinstance(x, _Handler))
    line = json.loads(handler.format(record))
    assert line["request_id"] == "req-logtest-1"
    assert line["trace_id"] == r.headers["x-trace-id"]
    assert line["level"] == "info" and "timestamp" in line
    assert created["key"] not in caplog.text
