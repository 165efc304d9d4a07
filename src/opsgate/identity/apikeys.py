"""API keys: format, hashing, storage, verification.

A key looks like `ogk_<id>_<secret>`: the id is public (listing, revocation, lookup), the secret
is 32 random bytes. Only HMAC-SHA256(secret_key, key) is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from opsgate.db.engine import Database
from opsgate.errors import NotFound, Unauthenticated
from opsgate.identity.models import ApiKey, ApiKeyIndex
from opsgate.identity.principal import Principal, PrincipalKind

ID_LEN = 12
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes; lower case only


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str
    key_id: str
    record: ApiKey


def key_pattern(prefix: str) -> re.Pattern[str]:
    # Strict shape checked before any lookup: anything else is refused without touching the DB.
    return re.compile(
        rf"\A{re.escape(prefix)}_([{_ID_ALPHABET}]{{{ID_LEN}}})_([A-Za-z0-9_-]{{43}})\Z"
    )


def hash_key(pepper: bytes, key: str) -> bytes:
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def new_key(prefix: str) -> tuple[str, str]:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LEN))
    secret = secrets.token_urlsafe(32)
    return key_id, f"{prefix}_{key_id}_{secret}"


class ApiKeyStore:
    """Creates, lists, revokes and verifies API keys."""

    def __init__(self, db: Database, pepper: bytes, prefix: str) -> None:
        self.db = db
        self.pepper = pepper
        self.prefix = prefix
        self.pattern = key_pattern(prefix)

    async def create(
        self,
        *,
        tenant: str,
        name: str,
        kind: PrincipalKind,
        roles: list[str],
        scopes: list[str],
        created_by: str,
        expires_at: datetime | None,
    ) -> IssuedKey:
        key_id, key = new_key(self.prefix)
        record = ApiKey(
            tenant_id=tenant,
            id=key_id,
            name=name,
            kind=kind,
            roles=sorted(set(roles)),
            scopes=sorted(set(scopes)),
            key_hash=hash_key(self.pepper, key),
            created_by=created_by,
            created_at=datetime.now(UTC),
            expires_at=expires_at,
        )
        async with self.db.session(None) as s:
            s.add(ApiKeyIndex(id=key_id, key_tenant=tenant))
        async with self.db.session(tenant) as s:
            s.add(record)
        return IssuedKey(key=key, key_id=key_id, record=record)

    async def list(self, tenant: str) -> list[ApiKey]:
        async with self.db.session(tenant) as s:
            rows = await s.execute(select(ApiKey).order_by(ApiKey.created_at))
            return list(rows.scalars())

    async def revoke(self, tenant: str, key_id: str) -> ApiKey:
        async with self.db.session(tenant) as s:
            rec = await s.get(ApiKey, (tenant, key_id))
            if rec is None:
                raise NotFound(f"no API key {key_id!r}")
            if rec.revoked_at is None:
                rec.revoked_at = datetime.now(UTC)
            return rec

    async def any_with_role(self, tenant: str, role: str) -> bool:
        return any(role in k.roles and k.revoked_at is None for k in await self.list(tenant))

    async def verify(self, presented: str) -> Principal:
        """Return the key's principal, or raise Unauthenticated (one message for every cause)."""
        m = self.pattern.match(presented)
        if m is None:
            raise Unauthenticated("invalid credentials")
        key_id = m.group(1)
        async with self.db.session(None) as s:
            tenant = await s.scalar(select(ApiKeyIndex.key_tenant).where(ApiKeyIndex.id == key_id))
        rec: ApiKey | None = None
        if tenant is not None:
            async with self.db.session(tenant) as s:
                rec = await s.get(ApiKey, (tenant, key_id))
        # Always compare, even when the id is unknown, so timing does not reveal which ids exist.
        stored = rec.key_hash if rec is not None else b"\x00" * 32
        ok = hmac.compare_digest(stored, hash_key(self.pepper, presented))
        if rec is None or not ok:
            raise Unauthenticated("invalid credentials")
        now = datetime.now(UTC)
        expires = rec.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)  # SQLite drops the zone
        if rec.revoked_at is not None or (expires is not None and expires <= now):
            raise Unauthenticated("invalid credentials")
        return Principal(
            id=f"key:{rec.id}",
            kind=rec.kind,  # type: ignore[arg-type]  # validated on create
            tenant=rec.tenant_id,
            roles=frozenset(rec.roles),
            auth="api_key",
            credential_id=rec.id,
            scopes=frozenset(rec.scopes),
            name=rec.name,
        )
