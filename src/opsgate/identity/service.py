"""Authentication: a presented credential in, a `Principal` out."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn
from opsgate.bus.base import EventBus
from opsgate.db.engine import Database
from opsgate.errors import Forbidden, Unauthenticated
from opsgate.identity.apikeys import ApiKeyStore
from opsgate.identity.cache import TTLCache, credential_digest
from opsgate.identity.oidc import OIDCVerifier
from opsgate.identity.principal import Principal
from opsgate.identity.settings import IdentitySettings
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.identity")

REVOKED_TOPIC = "identity.key_revoked"
TENANT_CACHE_SECONDS = 5.0


class IdentityService:
    def __init__(
        self,
        settings: IdentitySettings,
        db: Database,
        pepper: bytes,
        audit: Auditor,
        bus: EventBus,
        *,
        default_tenant: str = "default",
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.default_tenant = default_tenant
        self.db = db
        self.audit = audit
        self.bus = bus
        self._http = http or httpx.AsyncClient(timeout=settings.jwks_timeout_seconds)
        self.keys = ApiKeyStore(db, pepper, settings.api_key_prefix)
        self.oidc = OIDCVerifier(settings, self._http)
        self._cache: TTLCache[Principal] = TTLCache(settings.cache_ttl_seconds)
        self._tenants: TTLCache[bool] = TTLCache(TENANT_CACHE_SECONDS, 10_000)
        # Verifications in progress, by credential digest: when a cached entry expires under
        # load, the concurrent requests presenting that credential wait for one lookup
        # instead of each querying the database.
        self._inflight: dict[bytes, asyncio.Future[Principal | None]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen_revocations())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._http.aclose()

    async def _listen_revocations(self) -> None:
        async for event in self.bus.subscribe(REVOKED_TOPIC):
            key_id = event.get("key_id")
            if isinstance(key_id, str):
                self._evict(key_id)

    def _evict(self, key_id: str) -> None:
        self._cache.discard_where(lambda p: p.credential_id == key_id)

    async def authenticate(self, credential: str, *, source: str = "") -> Principal:
        digest = credential_digest(credential)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        pending = self._inflight.get(digest)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None:
                return shared
            # The lookup failed: verify again here, so every failure is audited as before.
            return await self._authenticate(credential, digest, source)
        done: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = done
        principal: Principal | None = None
        try:
            principal = await self._authenticate(credential, digest, source)
            return principal
        finally:
            del self._inflight[digest]
            done.set_result(principal)

    async def _authenticate(self, credential: str, digest: bytes, source: str) -> Principal:
        try:
            principal, ttl = await self._verify(credential)
        except Unauthenticated as exc:
            await self._failed(str(exc.detail), source)
            raise
        if not await self._tenant_active(principal.tenant):
            await self._failed("unknown tenant", source, tenant=principal.tenant)
            raise Forbidden("unknown or inactive tenant")
        self._cache.put(digest, principal, min(ttl, self.settings.cache_ttl_seconds))
        return principal

    async def _verify(self, credential: str) -> tuple[Principal, float]:
        if credential.startswith(self.settings.api_key_prefix + "_"):
            return await self.keys.verify(credential), self.settings.cache_ttl_seconds
        if self.oidc.enabled and credential.count(".") == 2:
            return await self.oidc.verify(credential)
        raise Unauthenticated("invalid credentials")

    async def _tenant_active(self, tenant: str) -> bool:
        key = tenant.encode()
        known = self._tenants.get(key)
        if known is None:
            known = await self.db.tenant_exists(tenant)
            self._tenants.put(key, known)
        return known

    async def _failed(self, reason: str, source: str, tenant: str | None = None) -> None:
        await self.audit.emit(
            AuditEventIn(
                tenant=tenant or self.default_tenant,
                actor="anonymous",
                action="auth.failed",
                resource="auth",
                outcome="denied",
                reason=reason,
                payload={"source": source[:64]},
            )
        )

    async def revoke_key(self, tenant: str, key_id: str, actor: str) -> None:
        await self.keys.revoke(tenant, key_id)
        self._evict(key_id)
        await self.bus.publish(REVOKED_TOPIC, {"key_id": key_id, "at": time.time()})
        log.info("api key revoked", key_id=key_id, by=actor)
