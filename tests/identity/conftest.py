"""An in-process identity provider: an RSA key pair and a JWKS served over httpx."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://idp.example.test/tenant-1/v2.0"
AUDIENCE = "api://opsgate"
JWKS_URL = "https://idp.example.test/jwks"


class FakeIdP:
    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.up = True
        self.fetches = 0
        self.add_key("k1")

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, k in self.keys.items():
            jwk = RSAAlgorithm.to_jwk(k.public_key(), as_dict=True)
            jwk.update(kid=kid, use="sig", alg="RS256")
            out.append(jwk)
        return {"keys": out}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("idp down", request=request)
        if request.url.path == "/jwks":
            self.fetches += 1
            return httpx.Response(200, json=self.jwks())
        return httpx.Response(404)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def token(self, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-123",
            "iat": now,
            "exp": now + 300,
            "groups": ["sg-ops"],
            "preferred_username": "ana@example.test",
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


def oidc_settings(**over: Any) -> dict[str, Any]:
    issuer = {"issuer": ISSUER, "audience": [AUDIENCE], "jwks_url": JWKS_URL}
    issuer.update(over)
    return {
        "oidc": [issuer],
        "group_roles": {"sg-ops": ["operator"], "sg-admins": ["admin"], "Approvers": ["approver"]},
    }
