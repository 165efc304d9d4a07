"""OIDC/JWT bearer tokens against an in-process JWKS."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from opsgate.app import create_app
from opsgate.settings import Settings
from tests.conftest import AppHarness, migrated
from tests.identity.conftest import ISSUER, FakeIdP, oidc_settings


@pytest.fixture
async def oidc_harness(make_settings: Any, idp: FakeIdP) -> AsyncIterator[AppHarness]:
    settings: Settings = make_settings(identity=oidc_settings())
    key = await migrated(settings)
    app = create_app(settings)
    async with LifespanManager(app):
        app.state.runtime.identity.oidc.client = idp.client()
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
            yield AppHarness(app, c, key)


async def _who(h: AppHarness, token: str) -> Any:
    return await h.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})


async def test_valid_token_maps_groups_to_roles(oidc_harness: AppHarness, idp: FakeIdP) -> None:
    r = await _who(oidc_harness, idp.token(groups=["sg-ops", "unmapped"], roles=["Approvers"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "user-123" and body["kind"] == "user" and body["auth"] == "jwt"
    assert body["roles"] == ["approver", "operator"]
    assert body["groups"] == ["sg-ops", "unmapped"]
    assert body["name"] == "ana@example.test"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "api://someone-else"},
        {"iss": "https://evil.example/"},
        {"sub": None},
        {"nbf": int(time.time()) + 3600},
    ],
)
async def test_bad_claims_401(
    oidc_harness: AppHarness, idp: FakeIdP, claims: dict[str, Any]
) -> None:
    r = await _who(oidc_harness, idp.token(**claims))
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid credentials"


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


async def test_unsigned_and_tampered_tokens_401(oidc_harness: AppHarness, idp: FakeIdP) -> None:
    good = idp.token()
    header, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    none_token = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{payload}."
    elevated = dict(claims, groups=["sg-admins"])
    tampered = f"{header}.{_b64(elevated)}.{sig}"
    # algorithm confusion: HS256 "signed" with the public key's PEM as the HMAC secret
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    pem = (
        idp.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = f"{_b64({'alg': 'HS256', 'kid': 'k1'})}.{payload}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    hs = signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    for token in (none_token, tampered, hs, f"{header}.{payload}", "a.b.c"):
        r = await _who(oidc_harness, token)
        assert r.status_code == 401, token
        assert "signature" not in r.text.lower()


async def test_tokens_sharing_long_prefix_never_share_principal(
    oidc_harness: AppHarness, idp: FakeIdP
) -> None:
    t1 = idp.token(sub="alice", groups=["sg-admins"])
    t2 = idp.token(sub="bob", groups=[])
    assert t1[:20] == t2[:20]  # same header
    r1, r2 = await _who(oidc_harness, t1), await _who(oidc_harness, t2)
    assert r1.json()["id"] == "alice" and "admin" in r1.json()["roles"]
    assert r2.json()["id"] == "bob" and r2.json()["roles"] == []


async def test_key_rotation_picks_up_new_kid(oidc_harness: AppHarness, idp: FakeIdP) -> None:
    assert (await _who(oidc_harness, idp.token())).status_code == 200
    idp.add_key("k2")
    oidc_harness.runtime.identity.oidc._sets[ISSUER].fetched_at -= 60  # past the refresh floor
    r = await _who(oidc_harness, idp.token(kid="k2", sub="new-key-user"))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "new-key-user"


async def test_unknown_kid_refresh_is_rate_limited(oidc_harness: AppHarness, idp: FakeIdP) -> None:
    assert (await _who(oidc_harness, idp.token())).status_code == 200
    fetches = idp.fetches
    idp.add_key("k9")
    for i in range(20):
        r = await _who(oidc_harness, idp.token(kid="k9", sub=f"u{i}"))
        assert r.status_code == 401
    assert idp.fetches == fetches  # the refresh floor holds: no fetch storm


async def test_jwks_unreachable_fails_closed(make_settings: Any, idp: FakeIdP) -> None:
    settings: Settings = make_settings(identity=oidc_settings())
    await migrated(settings)
    app = create_app(settings)
    idp.up = False
    async with LifespanManager(app):
        app.state.runtime.identity.oidc.client = idp.client()
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
            r = await c.get("/api/v1/whoami", headers={"Authorization": f"Bearer {idp.token()}"})
    assert r.status_code == 503
    assert "idp down" not in r.text


async def test_unknown_tenant_403(make_settings: Any, idp: FakeIdP) -> None:
    settings: Settings = make_settings(identity=oidc_settings(tenant_claim="tid"))
    await migrated(settings)
    app = create_app(settings)
    async with LifespanManager(app):
        app.state.runtime.identity.oidc.client = idp.client()
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
            r = await c.get(
                "/api/v1/whoami", headers={"Authorization": f"Bearer {idp.token(tid='nope')}"}
            )
            assert r.status_code == 403
            ok = await c.get(
                "/api/v1/whoami", headers={"Authorization": f"Bearer {idp.token(tid='default')}"}
            )
            assert ok.status_code == 200
