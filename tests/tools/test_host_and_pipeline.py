"""The host connector's outbound checks and the governed pipeline through the REST API."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opsgate.errors import Forbidden
from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ZONES_FILE, load_zones
from opsgate.tools.connectors.base import CallContext
from opsgate.tools.connectors.host import HostConnector
from opsgate.tools.netguard import NetGuard
from tests.conftest import AppHarness
from tests.tools.fakeops import APPROVER, OpsConnector

ZONES = load_zones(ZONES_FILE)
USER = Principal(id="u", kind="user", tenant="default", roles=frozenset({"operator"}))


class _Web(BaseHTTPRequestHandler):
    def log_message(self, *a: Any) -> None:
        return None

    def do_GET(self) -> None:
        if self.path == "/redirect-internal":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def web() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Web)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield int(srv.server_address[1])
    srv.shutdown()


async def _noop(ref: str) -> str:
    return ""


def _ctx() -> CallContext:
    return CallContext(USER, "default", _noop, 5)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "0177.0.0.1",
        "0x7f000001",
        "2130706433",
        "::1",
        "::ffff:127.0.0.1",
        "169.254.169.254",
        "10.1.2.3",
        "192.168.0.1",
        "0.0.0.0",
        "[::1]",
    ],
)
async def test_private_targets_refused_in_every_form(host: str) -> None:
    guard = NetGuard([])
    with pytest.raises(Forbidden):
        await guard.resolve(host, 80)


async def test_allow_list_and_http_check(web: int) -> None:
    c = HostConnector(ZONES, NetGuard(["127.0.0.0/8"]))
    r = await c.call("host.http_check", {"url": f"http://127.0.0.1:{web}/"}, _ctx())
    assert r.content["ok"] and r.content["status"] == 200
    # every redirect hop is checked again: the metadata address stays refused
    with pytest.raises(Forbidden):
        await c.call(
            "host.http_check", {"url": f"http://127.0.0.1:{web}/redirect-internal"}, _ctx()
        )
    r = await c.call("host.tcp_check", {"host": "127.0.0.1", "port": web}, _ctx())
    assert r.content["open"]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    r = await c.call("host.tcp_check", {"host": "127.0.0.1", "port": port}, _ctx())
    assert r.content["open"] is False
    await c.aclose()


async def test_without_allow_list_loopback_is_refused(web: int) -> None:
    c = HostConnector(ZONES, NetGuard([]))
    with pytest.raises(Forbidden):
        await c.call("host.http_check", {"url": f"http://127.0.0.1:{web}/"}, _ctx())
    await c.aclose()


async def test_local_resources() -> None:
    c = HostConnector(ZONES, NetGuard([]))
    assert (await c.call("host.local_disk", {"path": "/"}, _ctx())).content["total"] > 0
    assert (await c.call("host.local_load", {}, _ctx())).content["cpus"] >= 1
    assert "MemTotal" in (await c.call("host.local_memory", {}, _ctx())).content
    await c.aclose()


@pytest.fixture
def ops(harness: AppHarness) -> OpsConnector:
    return OpsConnector.install(harness.runtime)


async def _key(h: AppHarness, roles: list[str], kind: str = "agent") -> str:
    return (
        await h.runtime.identity.keys.create(
            tenant="default",
            name=f"k-{roles[0]}",
            kind=kind,
            roles=roles,
            scopes=[],
            created_by="t",
            expires_at=None,
        )
    ).key


async def test_l0_executes_and_is_audited(harness: AppHarness) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    tools = (await h.client.get("/api/v1/tools", headers=h.auth(agent))).json()
    assert "host.local_load" in {t["name"] for t in tools}
    r = await h.client.post(
        "/api/v1/tools/host.local_load/call", json={"arguments": {}}, headers=h.auth(agent)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "executed" and r.json()["gate"] == "L0"
    audit = (
        await h.client.get("/api/v1/audit", params={"action_prefix": "tool.call"}, headers=h.auth())
    ).json()
    assert [e["action"] for e in audit["items"]][:2] == ["tool.call", "tool.call.start"]


async def test_bad_arguments_and_unknown_tools(harness: AppHarness, ops: OpsConnector) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    r = await h.client.post(
        "/api/v1/tools/k8s.restart/call",
        json={"arguments": {"replicas": "x"}},
        headers=h.auth(agent),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "(root)"
    r = await h.client.post(
        "/api/v1/tools/nope.tool/call", json={"arguments": {}}, headers=h.auth(agent)
    )
    assert r.status_code == 404
    assert ops.calls == []


async def test_l2_waits_for_approval_then_executes_once(
    harness: AppHarness, ops: OpsConnector
) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    args = {"namespace": "prod", "name": "api-7f9"}
    r = await h.client.post(
        "/api/v1/tools/k8s.delete_pod/call",
        json={"arguments": args, "rationale": "pod stuck"},
        headers=h.auth(agent),
    )
    out = r.json()
    assert out["status"] == "pending_approval" and out["gate"] == "L2" and ops.calls == []
    req = await h.runtime.approvals.get("default", out["approval_id"])
    assert req.preview == {"would_delete": "api-7f9"} and req.approver_groups == [
        "sg-k8s-approvers"
    ]
    await h.runtime.approvals.decide(APPROVER, out["approval_id"], approve=True)
    # The server runs the approved call itself, as the requester, exactly once.
    settled = await h.runtime.held.wait("default", out["approval_id"], 10, poll=0.05)
    assert settled.status == "executed" and len(ops.calls) == 1
    # a different argument is refused
    r = await h.client.post(
        "/api/v1/tools/k8s.delete_pod/call",
        json={"arguments": {**args, "name": "other"}, "approval_id": out["approval_id"]},
        headers=h.auth(agent),
    )
    assert r.status_code == 409
    # the agent's retries get the one execution's stored result; nothing runs again
    for _ in range(2):
        r = await h.client.post(
            "/api/v1/tools/k8s.delete_pod/call",
            json={"arguments": args, "approval_id": out["approval_id"]},
            headers=h.auth(agent),
        )
        assert r.status_code == 200 and r.json()["status"] == "executed"
        assert r.json()["result"] == settled.result["content"]  # type: ignore[index]
    # someone else cannot collect it
    other = await _key(h, ["agent"])
    r = await h.client.post(
        "/api/v1/tools/k8s.delete_pod/call",
        json={"arguments": args, "approval_id": out["approval_id"]},
        headers=h.auth(other),
    )
    assert r.status_code == 409
    assert len(ops.calls) == 1


async def test_l3_never_by_an_ai(harness: AppHarness, ops: OpsConnector) -> None:
    h = harness
    operator_agent = await _key(h, ["operator"], kind="agent")
    r = await h.client.post(
        "/api/v1/tools/iam.reset_mfa/call",
        json={"arguments": {"name": "bob"}},
        headers=h.auth(operator_agent),
    )
    assert r.status_code == 200
    assert r.json()["status"] == "decision_support" and r.json()["gate"] == "L3"
    assert ops.calls == []


async def test_secrets_guarded_both_ways(harness: AppHarness, ops: OpsConnector) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    r = await h.client.post(
        "/api/v1/tools/k8s.restart/call",
        json={
            "arguments": {
                "namespace": "dev",
                "note": "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            }
        },
        headers=h.auth(agent),
    )
    assert r.status_code == 403 and ops.calls == []
    r = await h.client.post(
        "/api/v1/tools/k8s.restart/call",
        json={"arguments": {"namespace": "dev"}},
        headers=h.auth(agent),
    )
    assert r.status_code == 200 and r.json()["status"] == "executed"
    assert "ghp_" not in r.text  # the secret in the tool's output was redacted


async def test_tool_calls_are_authorised_against_the_caller(
    harness: AppHarness, ops: OpsConnector
) -> None:
    h = harness
    user = await _key(h, ["user"], kind="service")
    r = await h.client.post(
        "/api/v1/tools/k8s.restart/call", json={"arguments": {}}, headers=h.auth(user)
    )
    assert r.status_code == 403 and ops.calls == []
    assert "k8s.restart" not in {
        t["name"] for t in (await h.client.get("/api/v1/tools", headers=h.auth(user))).json()
    }


def test_zones_file_exists() -> None:
    assert Path(ZONES_FILE).exists()
