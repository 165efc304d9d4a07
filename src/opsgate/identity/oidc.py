"""OIDC/JWT bearer tokens validated against the issuer's JWKS."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from opsgate.errors import Unauthenticated, Unavailable
from opsgate.identity.principal import Principal
from opsgate.identity.settings import IdentitySettings, OIDCIssuer
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.identity.oidc")

# A refresh triggered by an unknown `kid` happens at most this often per issuer, so a flood of
# tokens with random kids cannot turn into a flood of JWKS fetches.
MIN_REFRESH_INTERVAL = 10.0
MAX_TOKEN_LEN = 16_384


class _KeySet:
    def __init__(self) -> None:
        self.keys: dict[str, PyJWK] = {}
        self.fetched_at = 0.0
        self.lock = asyncio.Lock()


class OIDCVerifier:
    def __init__(self, settings: IdentitySettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.issuers = {i.issuer: i for i in settings.oidc}
        self._sets: dict[str, _KeySet] = {i.issuer: _KeySet() for i in settings.oidc}

    @property
    def enabled(self) -> bool:
        return bool(self.issuers)

    async def _jwks_url(self, iss: OIDCIssuer) -> str:
        if iss.jwks_url:
            return iss.jwks_url
        r = await self.client.get(iss.issuer.rstrip("/") + "/.well-known/openid-configuration")
        r.raise_for_status()
        url = r.json().get("jwks_uri")
        if not isinstance(url, str):
            raise ValueError("discovery document has no jwks_uri")
        return url

    async def _refresh(self, iss: OIDCIssuer, ks: _KeySet) -> None:
        try:
            r = await self.client.get(await self._jwks_url(iss))
            r.raise_for_status()
            keys: dict[str, PyJWK] = {}
            for raw in r.json().get("keys", []):
                if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                    continue
                try:
                    k = PyJWK.from_dict(raw)
                except jwt.PyJWTError:
                    continue  # unsupported key types in the set are ignored, not fatal
                keys[str(raw.get("kid", ""))] = k
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks fetch failed", issuer=iss.issuer, error=type(exc).__name__)
            ks.fetched_at = time.monotonic()  # back off; cached keys (if any) stay in use
            return
        ks.keys = keys
        ks.fetched_at = time.monotonic()

    async def _key(self, iss: OIDCIssuer, kid: str) -> PyJWK:
        ks = self._sets[iss.issuer]
        seen = ks.fetched_at
        age = time.monotonic() - seen
        if age > self.settings.jwks_cache_seconds or (
            kid not in ks.keys and age > MIN_REFRESH_INTERVAL
        ):
            async with ks.lock:
                if ks.fetched_at == seen:  # nobody refreshed while we waited for the lock
                    await self._refresh(iss, ks)
        if not ks.keys:
            # Fail closed: without the issuer's keys no token can be trusted.
            raise Unavailable("identity provider keys unavailable")
        key = ks.keys.get(kid)
        if key is None:
            raise Unauthenticated("invalid credentials")
        return key

    async def verify(self, token: str) -> tuple[Principal, float]:
        """Validate `token`; return its principal and seconds until it expires."""
        if len(token) > MAX_TOKEN_LEN:
            raise Unauthenticated("invalid credentials")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated("invalid credentials") from None
        iss = self.issuers.get(str(unverified.get("iss", "")))
        alg = header.get("alg")
        if iss is None or not isinstance(alg, str) or alg not in iss.algorithms or alg == "none":
            raise Unauthenticated("invalid credentials")
        key = await self._key(iss, str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=iss.audience,
                issuer=iss.issuer,
                leeway=iss.leeway_seconds,
                options={"require": ["exp", "iss", "aud", iss.subject_claim]},
            )
        except jwt.PyJWTError:
            raise Unauthenticated("invalid credentials") from None
        return self._principal(iss, claims), float(claims["exp"]) - time.time()

    def _principal(self, iss: OIDCIssuer, claims: dict[str, Any]) -> Principal:
        groups = _strings(claims, iss.group_claims)
        idp_roles = _strings(claims, iss.role_claims)
        roles: set[str] = set()
        for name in groups | idp_roles:
            roles.update(self.settings.group_roles.get(name, ()))
        tenant = iss.tenant
        if iss.tenant_claim:
            value = claims.get(iss.tenant_claim)
            if isinstance(value, str) and value:
                tenant = value
        name = next(
            (str(claims[c]) for c in ("preferred_username", "email", "name") if claims.get(c)),
            "",
        )
        return Principal(
            id=str(claims[iss.subject_claim]),
            kind="user",
            tenant=tenant,
            groups=frozenset(groups),
            roles=frozenset(roles),
            auth="jwt",
            credential_id=str(claims.get("jti")) if claims.get("jti") else None,
            name=name,
        )


def _strings(claims: dict[str, Any], names: list[str]) -> set[str]:
    out: set[str] = set()
    for n in names:
        v = claims.get(n)
        if isinstance(v, str):
            out.add(v)
        elif isinstance(v, list):
            out.update(x for x in v if isinstance(x, str))
    return out
