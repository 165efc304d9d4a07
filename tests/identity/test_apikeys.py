"""API keys through the HTTP API: lifecycle, scopes, expiry, revocation, bad input."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from sqlalchemy import select, update

from opsgate.identity import apikeys
from opsgate.identity.models import ApiKey
from tests.conftest import AppHarness


async def test_whoami_with_bootstrap_admin_key(harness: AppHarness) -> None:
    r = await harness.client.get("/api/v1/whoami", headers=harness.auth())
    assert r.status_code == 200
    body = r.json()
    assert body["tenant"] == "default" and "admin" in body["roles"]
    assert body["kind"] == "service" and body["auth"] == "api_key"
    assert harness.admin_key not in r.text


async def test_unauthenticated_is_401_with_challenge(harness: AppHarness) -> None:
    r = await harness.client.get("/api/v1/whoami")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = await harness.client.get("/api/v1/whoami", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


async def _create(h: AppHarness, **body: object) -> dict[str, object]:
    body.setdefault("name", "svc")
    r = await h.client.post("/api/v1/keys", json=body, headers=h.auth())
    assert r.status_code == 201, r.text
    data: dict[str, object] = r.json()
    return data


async def test_key_lifecycle(harness: AppHarness) -> None:
    created = await _create(
        harness,
        name="ci-bot",
        kind="agent",
        roles=["agent"],
        scopes=["tool:k8s.*"],
        expires_in_days=30,
    )
    key = str(created["key"])
    assert key.startswith("ogk_")
    who = (await harness.client.get("/api/v1/whoami", headers=harness.auth(key))).json()
    assert who["kind"] == "agent" and who["roles"] == ["agent"]
    listed = (await harness.client.get("/api/v1/keys", headers=harness.auth())).json()
    assert {k["id"] for k in listed} >= {created["id"]}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert key not in str(listed)
    # the new key is not an admin
    r = await harness.client.get("/api/v1/keys", headers=harness.auth(key))
    assert r.status_code == 403
    r = await harness.client.delete(f"/api/v1/keys/{created['id']}", headers=harness.auth())
    assert r.status_code == 204
    r = await harness.client.get("/api/v1/whoami", headers=harness.auth(key))
    assert r.status_code == 401


async def test_create_refuses_mass_assignment_and_bad_values(harness: AppHarness) -> None:
    for body in (
        {"name": "x", "tenant_id": "other"},
        {"name": "x", "key_hash": "00"},
        {"name": "x", "roles": ["superuser"]},
        {"name": "x", "scopes": ["everything"]},
        {"name": "", "roles": ["user"]},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "kind": "user"},
    ):
        r = await harness.client.post("/api/v1/keys", json=body, headers=harness.auth())
        assert r.status_code == 422, body
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"]
    r = await harness.client.post(
        "/api/v1/keys",
        content=b"{not json",
        headers={**harness.auth(), "content-type": "application/json"},
    )
    assert r.status_code == 422


async def test_revoke_unknown_key_404(harness: AppHarness) -> None:
    r = await harness.client.delete("/api/v1/keys/nosuchkey", headers=harness.auth())
    assert r.status_code == 404


async def test_expired_key_refused(harness: AppHarness) -> None:
    created = await _create(harness)
    async with harness.runtime.db.session("default") as s:
        await s.execute(
            update(ApiKey)
            .where(ApiKey.id == created["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    r = await harness.client.get("/api/v1/whoami", headers=harness.auth(str(created["key"])))
    assert r.status_code == 401


@pytest.mark.parametrize(
    "credential",
    [
        "' OR '1'='1",
        "ogk_' OR '1'='1_x",
        "ogk_aaaaaaaaaaaa_' OR 1=1; --aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "ogk_aaaaaaaaaaaa_" + "\u00e9" * 43,
        "ogk_" + "a" * 10_000,
        "x" * 10_240,
        "ogk_aaaaaaaaaaaa_" + "A" * 43,
        "null",
        "ogk__",
    ],
)
async def test_hostile_keys_are_plain_401(harness: AppHarness, credential: str) -> None:
    headers = {"Authorization": f"Bearer {credential}".encode().decode("latin-1")}
    try:
        r = await harness.client.get("/api/v1/whoami", headers=headers)
    except UnicodeEncodeError:
        r = await harness.client.get(
            "/api/v1/whoami", headers={"Authorization": b"Bearer " + credential.encode()}
        )
    assert r.status_code == 401
    assert r.json()["detail"] in {"invalid credentials", "expected a Bearer token"}


async def test_stored_hash_never_authenticates(harness: AppHarness) -> None:
    created = await _create(harness)
    async with harness.runtime.db.session("default") as s:
        stored = await s.scalar(select(ApiKey.key_hash).where(ApiKey.id == created["id"]))
    assert stored is not None
    b64 = base64.urlsafe_b64encode(stored).decode().rstrip("=")
    for forged in (
        stored.hex(),
        b64,
        f"ogk_{created['id']}_{b64}",
        f"ogk_{created['id']}_{stored.hex()[:43]}",
    ):
        r = await harness.client.get(
            "/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"}
        )
        assert r.status_code == 401, forged


async def test_compare_is_constant_time_and_always_runs(harness: AppHarness) -> None:
    created = await _create(harness)
    key = str(created["key"])
    calls: list[tuple[bytes, bytes]] = []
    real = apikeys.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    with mock.patch.object(apikeys.hmac, "compare_digest", spy):
        wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
        assert (
            await harness.client.get("/api/v1/whoami", headers=harness.auth(wrong))
        ).status_code == 401
        unknown = "ogk_zzzzzzzzzzzz_" + key.split("_", 2)[2]
        assert (
            await harness.client.get("/api/v1/whoami", headers=harness.auth(unknown))
        ).status_code == 401
    # one digest comparison per attempt, including for an id that does not exist
    assert len(calls) == 2
    assert all(len(a) == len(b) == 32 for a, b in calls)


async def test_cached_key_does_not_admit_lookalike(harness: AppHarness) -> None:
    created = await _create(harness)
    key = str(created["key"])
    assert (
        await harness.client.get("/api/v1/whoami", headers=harness.auth(key))
    ).status_code == 200
    # same 59-character prefix, different last character: never served from the cache
    for c in "ABCxyz019-_":
        if key[-1] == c:
            continue
        r = await harness.client.get("/api/v1/whoami", headers=harness.auth(key[:-1] + c))
        assert r.status_code == 401


async def test_revocation_reaches_other_instance_within_one_second(harness: AppHarness) -> None:
    """A second identity service on the same database (another replica, no shared bus)."""
    from opsgate.audit.base import MemoryAuditor
    from opsgate.bus.memory import MemoryBus
    from opsgate.identity.service import IdentityService

    rt = harness.runtime
    created = await _create(harness)
    key = str(created["key"])
    other = IdentityService(
        rt.settings.identity, rt.db, rt.secret_key, MemoryAuditor(), MemoryBus()
    )
    try:
        assert (await other.authenticate(key)).credential_id == created["id"]
        r = await harness.client.delete(f"/api/v1/keys/{created['id']}", headers=harness.auth())
        assert r.status_code == 204
        # this instance: immediately
        assert (
            await harness.client.get("/api/v1/whoami", headers=harness.auth(key))
        ).status_code == 401
        # the other instance: within the cache TTL (1 s)
        await asyncio.sleep(rt.settings.identity.cache_ttl_seconds + 0.05)
        with pytest.raises(Exception, match="invalid credentials"):
            await other.authenticate(key)
    finally:
        await other.close()


async def test_key_check_is_cached(harness: AppHarness) -> None:
    created = await _create(harness)
    key = str(created["key"])
    store = harness.runtime.identity.keys
    with mock.patch.object(store, "verify", wraps=store.verify) as spy:
        for _ in range(5):
            assert (
                await harness.client.get("/api/v1/whoami", headers=harness.auth(key))
            ).status_code == 200
    assert spy.call_count == 1


async def test_concurrent_misses_share_one_lookup(harness: AppHarness) -> None:
    created = await _create(harness)
    key = str(created["key"])
    identity = harness.runtime.identity
    with mock.patch.object(identity.keys, "verify", wraps=identity.keys.verify) as spy:
        principals = await asyncio.gather(*(identity.authenticate(key) for _ in range(20)))
    assert spy.call_count == 1
    assert {p.credential_id for p in principals} == {created["id"]}


async def test_concurrent_failures_are_each_audited(harness: AppHarness) -> None:
    from opsgate.audit.base import MemoryAuditor
    from opsgate.errors import Unauthenticated

    identity = harness.runtime.identity
    identity.audit = audit = MemoryAuditor()
    bad = "ogk_zzzzzzzzzzzz_" + "A" * 43
    results = await asyncio.gather(
        *(identity.authenticate(bad) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, Unauthenticated) for r in results)
    assert [e.action for e in audit.events] == ["auth.failed"] * 5


async def test_failed_auth_writes_only_an_audit_event(harness: AppHarness) -> None:
    from opsgate.audit.base import MemoryAuditor

    before = await harness.client.get("/api/v1/keys", headers=harness.auth())
    audit = MemoryAuditor()
    harness.runtime.identity.audit = audit
    r = await harness.client.get("/api/v1/whoami", headers={"Authorization": "Bearer ogk_nope"})
    assert r.status_code == 401
    assert [e.action for e in audit.events] == ["auth.failed"]
    assert "ogk_nope" not in str(audit.events[0])
    after = await harness.client.get("/api/v1/keys", headers=harness.auth())
    assert before.json() == after.json()


async def test_anthropic_style_x_api_key_header(harness: AppHarness) -> None:
    assert harness.admin_key
    r = await harness.client.get("/api/v1/whoami", headers={"x-api-key": harness.admin_key})
    assert r.status_code == 200
