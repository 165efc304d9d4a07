"""The model-call lane: model-call POSTs skip the framework's generic layers but keep the
edge middleware (ids, span, metrics, Host guard, body limit) and the app's error handlers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from httpx import AsyncClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsgate.errors import OpsGateError, Unauthenticated
from opsgate.http.lane import ModelCallLane, find_handler
from tests.conftest import AppHarness

CHAT = "/v1/chat/completions"
BODY = {"model": "ops-default", "messages": [{"role": "user", "content": "hi"}]}


def test_app_routes_model_calls_through_the_lane(harness: AppHarness) -> None:
    lane = harness.app.lane  # type: ignore[attr-defined]
    post = {"type": "http", "method": "POST"}
    for path in (CHAT, "/v1/embeddings", "/v1/messages"):
        assert lane.handles({**post, "path": path})
    assert not lane.handles({"type": "http", "method": "GET", "path": CHAT})
    assert not lane.handles({**post, "path": "/v1/models"})
    assert not lane.handles({**post, "path": "/api/v1/audit/verify"})
    assert not lane.handles({"type": "websocket", "path": CHAT})


async def test_lane_errors_keep_shape_ids_and_metrics(client: AsyncClient) -> None:
    r = await client.post(CHAT, json=BODY)  # no credential
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert len(r.headers["x-request-id"]) >= 16 and len(r.headers["x-trace-id"]) == 32
    text = (await client.get("/metrics")).text
    assert f'opsgate_http_requests_total{{method="POST",route="{CHAT}",status="401"}}' in text


async def test_lane_keeps_host_guard_and_body_limit(client: AsyncClient) -> None:
    r = await client.post(CHAT, json=BODY, headers={"host": "evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_host"
    r = await client.post(CHAT, content=b"x" * (4 * 1024 * 1024 + 10))
    assert r.status_code == 413


async def test_other_methods_take_the_ordinary_stack(client: AsyncClient) -> None:
    r = await client.get(CHAT)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_unhandled_error_answers_500_and_reaches_the_server(
    harness: AppHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsgate.gateway import api

    async def boom(request: Any) -> Any:
        raise RuntimeError("bug in the handler")

    monkeypatch.setattr(api, "_principal", boom)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": CHAT,
        "raw_path": CHAT.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
        "state": {},
    }
    with pytest.raises(RuntimeError, match="bug in the handler"):
        await harness.app(scope, receive, send)
    assert sent[0]["status"] == 500
    error = orjson.loads(sent[1]["body"])["error"]
    assert error["code"] == "internal_error" and "bug in the handler" not in error["message"]


# -- the lane on its own ---------------------------------------------------------------------


def _lane(endpoint: Any, handlers: dict[Any, Any]) -> ModelCallLane:
    def edge(inner: ASGIApp) -> ASGIApp:
        return inner

    return ModelCallLane([Route("/x", endpoint, methods=["POST"])], edge, handlers)


async def _call(lane: ModelCallLane) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/x", "headers": [], "state": {}}
    await lane(scope, receive, send)
    return sent


async def on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpsGateError)
    return JSONResponse({"code": exc.code}, status_code=exc.status)


async def test_handled_error_is_rendered_by_the_nearest_handler() -> None:
    async def endpoint(request: Request) -> Response:
        raise Unauthenticated("who are you")

    sent = await _call(_lane(endpoint, {OpsGateError: on_error}))
    assert sent[0]["status"] == 401
    assert find_handler({OpsGateError: on_error}, Unauthenticated()) is on_error
    assert find_handler({OpsGateError: on_error}, ValueError()) is None


async def test_error_without_handler_propagates() -> None:
    async def endpoint(request: Request) -> Response:
        raise ValueError("nobody handles this")

    with pytest.raises(ValueError):
        await _call(_lane(endpoint, {OpsGateError: on_error}))


async def test_error_after_the_response_started_is_not_answered_twice() -> None:
    class Breaks(Response):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise Unauthenticated("too late")

    async def endpoint(request: Request) -> Response:
        return Breaks()

    sent: list[Message] = []
    with pytest.raises(Unauthenticated):
        lane = _lane(endpoint, {OpsGateError: on_error})

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await lane({"type": "http", "method": "POST", "path": "/x", "state": {}}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]
