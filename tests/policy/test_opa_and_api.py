"""The OPA-server backend against a local Data API stub; the HTTP API; the CLI."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opsgate.audit.base import MemoryAuditor
from opsgate.cli.main import app as cli
from opsgate.identity.principal import Principal
from opsgate.policy.engines import OpaEngine
from opsgate.policy.service import PolicyService
from opsgate.policy.settings import PolicySettings
from tests.conftest import AppHarness

USER = Principal(id="u1", kind="user", tenant="default", roles=frozenset({"user"}))
RES = {"kind": "model", "name": "ops-default"}


def _opa(mode: str) -> httpx.AsyncClient:
    """OPA's Data API contract: POST /v1/data/<path> {"input"} -> {"result": …}."""

    async def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/data/opsgate/decision"
        body = json.loads(request.content)
        if mode == "undefined":
            return httpx.Response(200, json={})
        if mode == "error":
            return httpx.Response(500, json={"code": "internal_error"})
        if mode == "garbage":
            return httpx.Response(200, content=b"<html>")
        allow = "user" in body["input"]["principal"]["roles"]
        return httpx.Response(
            200,
            json={
                "result": {
                    "allow": allow,
                    "reasons": ["opa says so"],
                    "obligations": {"gate": "L1"},
                }
            },
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("mode", "allow", "reason"),
    [
        ("ok", True, "opa says so"),
        ("undefined", False, "fail closed"),
        ("error", False, "fail closed"),
        ("garbage", False, "fail closed"),
    ],
)
async def test_opa_backend(mode: str, allow: bool, reason: str) -> None:
    audit = MemoryAuditor()
    engine = OpaEngine("http://opa.test:8181", "opsgate/decision", 0.2, _opa(mode))
    svc = PolicyService(
        PolicySettings(backend="opa", opa_url="http://opa.test:8181", timeout_seconds=0.2),
        audit,
        engine,
    )
    d = await svc.decide(USER, "model.invoke", RES)
    assert d.allow is allow
    assert reason in d.reasons[0]
    if not allow:
        assert "policy.alert" in [e.action for e in audit.events]


class _DataApi(BaseHTTPRequestHandler):
    """A real HTTP server speaking OPA's Data API, for timeouts over a socket."""

    delay = 0.0

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay)
        if self.path != "/v1/data/opsgate/decision":
            self.send_response(404)
            self.end_headers()
            return
        allow = "user" in body["input"]["principal"]["roles"]
        raw = json.dumps({"result": {"allow": allow, "reasons": ["opa over http"]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


async def test_opa_backend_over_http_with_timeout() -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _DataApi)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        svc = PolicyService(
            PolicySettings(backend="opa", opa_url=url, timeout_seconds=0.3), MemoryAuditor()
        )
        _DataApi.delay = 0
        d = await svc.decide(USER, "model.invoke", RES)
        assert d.allow and d.reasons == ("opa over http",)
        _DataApi.delay = 1.0
        t0 = time.perf_counter()
        d = await svc.decide(USER, "model.invoke", RES)
        assert not d.allow and "fail closed" in d.reasons[0]
        assert time.perf_counter() - t0 < 0.9
        await svc.aclose()
    finally:
        srv.shutdown()


async def test_opa_fail_open_action() -> None:
    engine = OpaEngine("http://opa.test", "opsgate/decision", 0.2, _opa("error"))
    svc = PolicyService(
        PolicySettings(
            backend="opa", opa_url="http://opa.test", fail_open_actions=["model.invoke"]
        ),
        MemoryAuditor(),
        engine,
    )
    assert (await svc.decide(USER, "model.invoke", RES)).allow
    assert not (await svc.decide(USER, "tool.call", {"kind": "tool", "name": "t"})).allow


async def test_api_simulate_decisions_bundle(harness: AppHarness) -> None:
    h = harness
    doc = {
        "principal": {"id": "u", "kind": "user", "tenant": "default", "roles": ["user"]},
        "action": "model.invoke",
        "resource": {"kind": "model", "name": "confidential-chat"},
        "context": {},
    }
    r = await h.client.post("/api/v1/policy/simulate", json=doc, headers=h.auth())
    assert r.status_code == 200 and r.json()["allow"] is False
    r = await h.client.post("/api/v1/policy/simulate", json={"action": 1}, headers=h.auth())
    assert r.status_code == 200 and r.json()["reasons"][0].startswith("invalid input")
    p = Principal(id="u7", kind="user", tenant="default", roles=frozenset({"user"}))
    await h.runtime.policy.decide(p, "model.invoke", {"kind": "model", "name": "ops-default"})
    r = await h.client.get("/api/v1/policy/decisions", headers=h.auth())
    items = r.json()["items"]
    assert items and items[0]["actor"] == "u7" and items[0]["payload"]["allow"] is True
    r = await h.client.get("/api/v1/policy/bundle", headers=h.auth())
    assert r.json()["backend"] == "embedded" and len(r.json()["revision"]) == 12


def test_cli_test_eval_check(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["policy", "test"])
    assert r.exit_code == 0, r.output
    assert "0 failed" in r.output
    doc = {
        "principal": {"id": "u", "kind": "agent", "tenant": "default", "roles": ["agent"]},
        "action": "tool.call",
        "resource": {
            "kind": "tool",
            "name": "k8s.delete_pod",
            "zone": "kubernetes",
            "risk": "destructive",
            "gate": "L1",
            "namespace": "prod",
        },
        "context": {"hour": 10, "weekday": 2},
    }
    f = tmp_path / "in.json"
    f.write_text(json.dumps(doc))
    r = runner.invoke(cli, ["policy", "eval", "--input", str(f)])
    assert r.exit_code == 0, r.output
    out: dict[str, Any] = json.loads(r.stdout)
    assert out["obligations"]["gate"] == "L2"
    f.write_text("[1,2]")
    assert runner.invoke(cli, ["policy", "eval", "--input", str(f)]).exit_code == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.rego").write_text("package opsgate\n\nallow if {\n  input.x ==\n}\n")
    r = runner.invoke(cli, ["policy", "check", "--bundle", str(bad)])
    assert r.exit_code == 2 and "x.rego:" in r.output
    r = runner.invoke(cli, ["policy", "check"])
    assert r.exit_code == 0, r.output
