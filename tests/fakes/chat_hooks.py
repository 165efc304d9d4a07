"""Fake chat services over real HTTP: Slack's Web API and incoming-webhook receivers.

The Slack part speaks the Web API wire format (`POST /api/<method>`, bearer token, JSON or
form body, `{"ok": ...}` answers) so the real slack_sdk client talks to it unchanged.
Receivers under `/hooks/<name>` record every POST (Teams cards, signed webhooks) and can be
told to fail a number of times first.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


@dataclass
class Hit:
    name: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class ChatFakes:
    bot_token: str
    slack_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    # Receiver name -> how many of the next POSTs answer 503.
    fail: dict[str, int] = field(default_factory=dict)
    # Slack method -> how many of the next calls answer HTTP 500.
    slack_fail: dict[str, int] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [body for m, body in self.slack_calls if m == method]

    def hits_for(self, name: str) -> list[Hit]:
        return [h for h in self.hits if h.name == name]

    async def wait(self, check: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError("the fake never saw the expected call")

    async def slack(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            body = orjson.loads(raw or b"{}")
        else:
            body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if request.headers.get("authorization") != f"Bearer {self.bot_token}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        self.slack_calls.append((method, body))
        if self.slack_fail.get(method):
            self.slack_fail[method] -= 1
            return JSONResponse({"ok": False, "error": "internal_error"}, status_code=500)
        if method == "chat.postMessage":
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return JSONResponse(
                {"ok": True, "channel": body["channel"], "ts": ts, "message": {"ts": ts}}
            )
        if method == "chat.update":
            return JSONResponse({"ok": True, "channel": body["channel"], "ts": body["ts"]})
        if method == "chat.postEphemeral":
            return JSONResponse({"ok": True, "message_ts": f"{time.time():.6f}"})
        return JSONResponse({"ok": False, "error": "unknown_method"}, status_code=404)

    async def hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hits.append(Hit(name, dict(request.headers), await request.body()))
        if self.fail.get(name):
            self.fail[name] -= 1
            return PlainTextResponse("try later", status_code=503)
        return PlainTextResponse("1")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{method}", self.slack, methods=["POST"]),
                Route("/hooks/{name:path}", self.hook, methods=["POST"]),
            ]
        )
