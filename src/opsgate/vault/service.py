"""Envelope encryption of secrets.

Each secret version gets a fresh 256-bit data key (DEK); the value is sealed with AES-256-GCM
under the DEK with associated data `tenant \\0 name \\0 version`, so a ciphertext moved to
another tenant, name or version fails to open. The DEK is stored only wrapped by the KEK
backend. Rotation re-wraps DEKs and never touches ciphertexts.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from opsgate.db.engine import Database
from opsgate.errors import NotFound, PayloadTooLarge, ValidationFailed
from opsgate.vault.kek import KEKBackend, VaultIntegrityError
from opsgate.vault.models import StoredSecret

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
REF = "secret://"


class SecretValue:
    """A plaintext that never shows itself in repr, str or logs."""

    __slots__ = ("_v",)

    def __init__(self, value: str) -> None:
        self._v = value

    def reveal(self) -> str:
        return self._v

    def __repr__(self) -> str:
        return "SecretValue('**********')"

    __str__ = __repr__


@dataclass(frozen=True)
class SecretInfo:
    name: str
    version: int
    kek_id: str
    description: str
    created_by: str
    updated_at: datetime


def _aad(tenant: str, name: str, version: int) -> bytes:
    return f"{tenant}\x00{name}\x00{version}".encode()


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValidationFailed(
            "invalid secret name",
            errors=[{"field": "name", "message": "use 1-64 of a-z 0-9 . _ -, starting alnum"}],
        )
    return name


def _info(r: StoredSecret) -> SecretInfo:
    return SecretInfo(r.name, r.version, r.kek_id, r.description, r.created_by, r.updated_at)


class VaultService:
    def __init__(self, db: Database, kek: KEKBackend, max_bytes: int = 64 * 1024) -> None:
        self.db = db
        self.kek = kek
        self.max_bytes = max_bytes

    async def put(
        self, tenant: str, name: str, value: str, *, actor: str, description: str = ""
    ) -> SecretInfo:
        check_name(name)
        raw = value.encode()
        if len(raw) > self.max_bytes:
            raise PayloadTooLarge(f"secret values are limited to {self.max_bytes} bytes")
        async with self.db.session(tenant) as s:
            row = await s.get(StoredSecret, (tenant, name))
            version = (row.version + 1) if row else 1
            dek = AESGCM.generate_key(bit_length=256)
            nonce = secrets.token_bytes(12)
            aad = _aad(tenant, name, version)
            ct = AESGCM(dek).encrypt(nonce, raw, aad)
            wrapped, kek_id = await self.kek.wrap(dek, aad)
            if row is None:
                row = StoredSecret(tenant_id=tenant, name=name)
                s.add(row)
            row.version, row.ciphertext, row.nonce = version, ct, nonce
            row.wrapped_dek, row.kek_id = wrapped, kek_id
            row.description, row.created_by = description[:500], actor[:200]
            row.updated_at = datetime.now(UTC)
            return _info(row)

    async def get(self, tenant: str, name: str) -> SecretValue:
        """Decrypt at use. Raises NotFound, or VaultIntegrityError if anything was altered."""
        check_name(name)
        async with self.db.session(tenant) as s:
            row = await s.get(StoredSecret, (tenant, name))
            if row is None:
                raise NotFound(f"no secret {name!r}")
            aad = _aad(tenant, name, row.version)
            dek = await self.kek.unwrap(row.wrapped_dek, row.kek_id, aad)
            try:
                plain = AESGCM(dek).decrypt(row.nonce, row.ciphertext, aad)
            except (InvalidTag, ValueError):
                raise VaultIntegrityError(f"secret {name!r} failed authentication") from None
            return SecretValue(plain.decode())

    async def resolve(self, tenant: str, ref: str) -> SecretValue:
        """Resolve a `secret://name` reference (from settings or a connector config)."""
        if not ref.startswith(REF):
            raise ValidationFailed("secret references look like secret://name")
        return await self.get(tenant, ref[len(REF) :])

    async def list_meta(self, tenant: str) -> list[SecretInfo]:
        async with self.db.session(tenant) as s:
            rows = await s.execute(select(StoredSecret).order_by(StoredSecret.name))
            return [_info(r) for r in rows.scalars()]

    async def delete(self, tenant: str, name: str) -> None:
        check_name(name)
        async with self.db.session(tenant) as s:
            row = await s.get(StoredSecret, (tenant, name))
            if row is None:
                raise NotFound(f"no secret {name!r}")
            await s.delete(row)

    async def rotate_kek(self, tenants: list[str]) -> int:
        """Move to a new KEK and re-wrap every data key; ciphertexts are not touched."""
        await self.kek.rotate()
        n = 0
        for tenant in tenants:
            async with self.db.session(tenant) as s:
                for row in (await s.execute(select(StoredSecret))).scalars():
                    aad = _aad(tenant, row.name, row.version)
                    dek = await self.kek.unwrap(row.wrapped_dek, row.kek_id, aad)
                    row.wrapped_dek, row.kek_id = await self.kek.wrap(dek, aad)
                    n += 1
        return n
