"""The audit API through the app, and the export sinks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import orjson

from opsgate.audit.merkle import verify_inclusion
from opsgate.audit.schemas import AuditEventIn
from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings, AuditSinkSettings
from opsgate.audit.signing import Signer
from opsgate.audit.sinks import JsonlSink, WebhookSink
from opsgate.db.engine import Database
from opsgate.settings import Settings
from tests.audit.conftest import event
from tests.conftest import AppHarness, migrated


async def _seed(h: AppHarness, n: int) -> None:
    for i in range(n):
        await h.runtime.audit.emit(event(i, trace_id=f"t{i}"))
    await h.runtime.audit.flush()


async def test_list_filter_and_paginate(harness: AppHarness) -> None:
    await _seed(harness, 25)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, "action": "model.invoke"}
        if cursor:
            params["cursor"] = cursor
        r = await harness.client.get("/api/v1/audit", params=params, headers=harness.auth())
        assert r.status_code == 200, r.text
        body = r.json()
        assert all(e["action"] == "model.invoke" for e in body["items"])
        seen += [e["seq"] for e in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 12
    r = await harness.client.get("/api/v1/audit", params={"trace_id": "t4"}, headers=harness.auth())
    assert [e["trace_id"] for e in r.json()["items"]] == ["t4"]


async def test_bad_query_params(harness: AppHarness) -> None:
    for params in ({"limit": 0}, {"limit": 10_000}, {"outcome": "maybe"}, {"since": "yesterday"}):
        r = await harness.client.get("/api/v1/audit", params=params, headers=harness.auth())
        assert r.status_code == 422, params
    r = await harness.client.get("/api/v1/audit", params={"cursor": "!!!"}, headers=harness.auth())
    assert r.status_code == 400


async def test_user_role_cannot_read_audit(harness: AppHarness) -> None:
    issued = await harness.runtime.identity.keys.create(
        tenant="default",
        name="u",
        kind="service",
        roles=["user"],
        scopes=[],
        created_by="t",
        expires_at=None,
    )
    r = await harness.client.get("/api/v1/audit", headers=harness.auth(issued.key))
    assert r.status_code == 403


async def test_verify_and_inclusion_proof(harness: AppHarness) -> None:
    await _seed(harness, 5)
    log = harness.runtime.audit
    assert isinstance(log, AuditLog)
    await log._checkpoint_all()  # the time-based checkpoint, without waiting a minute
    r = await harness.client.get("/api/v1/audit/verify", headers=harness.auth())
    assert r.status_code == 200 and r.json()["ok"] is True
    pk = (await harness.client.get("/api/v1/audit/public-key", headers=harness.auth())).json()
    assert pk["algorithm"] == "Ed25519" and len(pk["public_key"]) == 64
    p = (await harness.client.get("/api/v1/audit/proof/3", headers=harness.auth())).json()
    ok = verify_inclusion(
        bytes.fromhex(p["leaf_hash"]),
        p["leaf_index"],
        p["tree_size"],
        [bytes.fromhex(x) for x in p["path"]],
        bytes.fromhex(p["root"]),
    )
    assert ok
    r = await harness.client.get("/api/v1/audit/proof/99999", headers=harness.auth())
    assert r.status_code == 404


async def test_api_actions_are_audited_without_secrets(harness: AppHarness) -> None:
    r = await harness.client.post("/api/v1/keys", json={"name": "bot"}, headers=harness.auth())
    key = r.json()["key"]
    await harness.client.get("/api/v1/whoami", headers={"Authorization": "Bearer ogk_bad"})
    r = await harness.client.get("/api/v1/audit", headers=harness.auth())
    actions = [e["action"] for e in r.json()["items"]]
    assert "apikey.create" in actions and "auth.failed" in actions
    assert key not in r.text and (harness.admin_key or "x") not in r.text


async def test_jsonl_and_webhook_sinks(settings: Settings, tmp_path: Path) -> None:
    await migrated(settings)
    received: list[tuple[bytes, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append((request.content, request.headers["x-opsgate-signature"]))
        return httpx.Response(204)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    out = tmp_path / "audit.jsonl"
    secret = b"webhook-secret"
    sinks = [
        JsonlSink(str(out)),
        WebhookSink(
            AuditSinkSettings(kind="webhook", target="https://siem.test/in"), secret, client
        ),
    ]
    db = Database(settings.database_url)
    log = AuditLog(db, AuditSettings(), Signer.from_data_dir(settings.data_dir), sinks)  # type: ignore[arg-type]
    await log.start()
    canary = "sk-ant-CANARY0123456789abcdefghijkl"
    for i in range(10):
        await log.emit(
            AuditEventIn("default", "a", "x", "r", "info", payload={"i": i, "note": canary})
        )
    await log.flush()
    await asyncio.sleep(0.1)
    await log.close()
    await db.dispose()
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [x["payload"]["i"] for x in lines] == list(range(10))
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    body = b"".join(b for b, _ in received)
    assert received and canary.encode() not in body and canary.encode() not in out.read_bytes()
    for b, sig in received:
        assert sig == "sha256=" + hmac.new(secret, b, hashlib.sha256).hexdigest()
    assert sum(len(orjson.loads(b)) for b, _ in received) == 10
