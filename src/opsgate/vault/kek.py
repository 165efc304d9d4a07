"""Key-encryption-key backends. Each wraps and unwraps per-secret data keys.

A wrapped key records which KEK (`kek_id`) wrapped it, so rotation can add a KEK and re-wrap
data keys while older KEKs still unwrap until then.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opsgate.errors import ConfigError, Unavailable
from opsgate.vault.settings import VaultSettings


class VaultIntegrityError(Exception):
    """A ciphertext or wrapped key failed authentication (tampered, swapped or wrong key)."""


class KEKBackend(Protocol):
    name: str

    async def wrap(self, dek: bytes, aad: bytes) -> tuple[bytes, str]: ...

    async def unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes: ...

    async def rotate(self) -> str: ...


def _aes_wrap(key: bytes, dek: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, dek, aad)


def _aes_unwrap(key: bytes, wrapped: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(wrapped[:12], wrapped[12:], aad)
    except (InvalidTag, ValueError):
        raise VaultIntegrityError("wrapped data key failed authentication") from None


def _kid(key: bytes) -> str:
    return hashlib.sha256(b"opsgate-kek" + key).hexdigest()[:16]


class LocalKeyring:
    """KEKs in a 0600 JSON file in the data directory (embedded default)."""

    name = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: dict[str, bytes] = {}
        self.current = ""
        self._load_or_create()

    def _load_or_create(self) -> None:
        if self.path.exists():
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                raise ConfigError([(str(self.path), f"permissions {oct(mode)}; must be 0600")])
            doc = orjson.loads(self.path.read_bytes())
            self.keys = {k: base64.b64decode(v) for k, v in doc["keys"].items()}
            self.current = doc["current"]
            return
        key = secrets.token_bytes(32)
        self.keys = {_kid(key): key}
        self.current = _kid(key)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "current": self.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(doc))
        tmp.replace(self.path)

    async def wrap(self, dek: bytes, aad: bytes) -> tuple[bytes, str]:
        return _aes_wrap(self.keys[self.current], dek, aad), f"local:{self.current}"

    async def unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes:
        key = self.keys.get(kek_id.removeprefix("local:"))
        if key is None:
            raise VaultIntegrityError(f"unknown key-encryption key {kek_id}")
        return _aes_unwrap(key, wrapped, aad)

    async def rotate(self) -> str:
        key = secrets.token_bytes(32)
        self.keys[_kid(key)] = key
        self.current = _kid(key)
        self._save()
        return f"local:{self.current}"


class EnvKey:
    """A KEK given in configuration (env var). Rotation means configuring a new key and
    listing the old one under `env_previous_keys` until `rotate-kek` has re-wrapped."""

    name = "env"

    def __init__(self, current: bytes, previous: list[bytes]) -> None:
        for k in (current, *previous):
            if len(k) != 32:
                raise ConfigError([("vault.env_key", "must be base64 of exactly 32 bytes")])
        self.current = current
        self.keys = {_kid(k): k for k in (current, *previous)}

    async def wrap(self, dek: bytes, aad: bytes) -> tuple[bytes, str]:
        return _aes_wrap(self.current, dek, aad), f"env:{_kid(self.current)}"

    async def unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes:
        key = self.keys.get(kek_id.removeprefix("env:"))
        if key is None:
            raise VaultIntegrityError(f"unknown key-encryption key {kek_id}")
        return _aes_unwrap(key, wrapped, aad)

    async def rotate(self) -> str:
        # The current key is whatever configuration says; re-wrapping moves data keys to it.
        return f"env:{_kid(self.current)}"


class HashicorpTransit:
    """HashiCorp Vault's transit engine (`hvac`): the KEK never leaves Vault."""

    name = "hashicorp"

    def __init__(self, client: Any, mount: str, key: str) -> None:
        self.client = client
        self.mount = mount
        self.key = key

    async def wrap(self, dek: bytes, aad: bytes) -> tuple[bytes, str]:
        resp = await asyncio.to_thread(
            self.client.secrets.transit.encrypt_data,
            name=self.key,
            plaintext=base64.b64encode(dek).decode(),
            mount_point=self.mount,
        )
        ct: str = resp["data"]["ciphertext"]  # "vault:vN:..." carries its own key version
        return ct.encode(), f"hashicorp:{self.key}"

    async def unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes:
        try:
            resp = await asyncio.to_thread(
                self.client.secrets.transit.decrypt_data,
                name=self.key,
                ciphertext=wrapped.decode(),
                mount_point=self.mount,
            )
        except Exception as exc:
            if "invalid" in str(exc).lower() or "cipher" in str(exc).lower():
                raise VaultIntegrityError("transit refused the wrapped key") from None
            raise Unavailable("key management service unavailable") from None
        return base64.b64decode(resp["data"]["plaintext"])

    async def rotate(self) -> str:
        await asyncio.to_thread(
            self.client.secrets.transit.rotate_key, name=self.key, mount_point=self.mount
        )
        return f"hashicorp:{self.key}"


class AwsKms:
    """AWS KMS Encrypt/Decrypt with the secret's binding as encryption context."""

    name = "aws"

    def __init__(self, client: Any, key_id: str) -> None:
        self.client = client
        self.key_id = key_id

    async def wrap(self, dek: bytes, aad: bytes) -> tuple[bytes, str]:
        resp = await asyncio.to_thread(
            self.client.encrypt,
            KeyId=self.key_id,
            Plaintext=dek,
            EncryptionContext={"opsgate": aad.hex()},
        )
        return bytes(resp["CiphertextBlob"]), f"aws:{self.key_id}"

    async def unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes:
        try:
            resp = await asyncio.to_thread(
                self.client.decrypt,
                CiphertextBlob=wrapped,
                EncryptionContext={"opsgate": aad.hex()},
            )
        except Exception as exc:
            if "InvalidCiphertext" in type(exc).__name__ or "InvalidCiphertext" in str(exc):
                raise VaultIntegrityError("KMS refused the wrapped key") from None
            raise Unavailable("key management service unavailable") from None
        return bytes(resp["Plaintext"])

    async def rotate(self) -> str:
        # KMS rotates key material behind the same key id; re-wrapping uses the newest.
        return f"aws:{self.key_id}"


class AzureKeyVault:
    """Azure Key Vault wrapKey/unwrapKey (RSA-OAEP-256) through azure-keyvault-keys."""

    name = "azure"

    def __init__(self, crypto_client: Any, key_id: str) -> None:
        self.crypto = crypto_client
        self.key_id = key_id

    async def wrap(self, dek: bytes, aad: bytes) -> tuple[bytes, str]:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        result = await asyncio.to_thread(self.crypto.wrap_key, KeyWrapAlgorithm.rsa_oaep_256, dek)
        return bytes(result.encrypted_key), f"azure:{result.key_id or self.key_id}"

    async def unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        try:
            result = await asyncio.to_thread(
                self.crypto.unwrap_key, KeyWrapAlgorithm.rsa_oaep_256, wrapped
            )
        except Exception:
            raise VaultIntegrityError("Key Vault refused the wrapped key") from None
        return bytes(result.key)

    async def rotate(self) -> str:
        return f"azure:{self.key_id}"


def build_kek(settings: VaultSettings, data_dir: Path) -> KEKBackend:
    b = settings.kek_backend
    if b == "local":
        return LocalKeyring(
            Path(settings.key_file) if settings.key_file else data_dir / "kek.keyring"
        )
    if b == "env":
        if settings.env_key is None:
            raise ConfigError(
                [("vault.env_key", "required for kek_backend=env (OPSGATE_VAULT__ENV_KEY)")]
            )
        try:
            cur = base64.b64decode(settings.env_key.get_secret_value(), validate=True)
            prev = [
                base64.b64decode(k.get_secret_value(), validate=True)
                for k in settings.env_previous_keys
            ]
        except ValueError:
            raise ConfigError([("vault.env_key", "not valid base64")]) from None
        return EnvKey(cur, prev)
    if b == "hashicorp":
        import hvac

        if not settings.hashicorp_url or settings.hashicorp_token is None:
            raise ConfigError(
                [("vault.hashicorp_url", "hashicorp_url and hashicorp_token are required")]
            )
        client = hvac.Client(
            url=settings.hashicorp_url,
            token=settings.hashicorp_token.get_secret_value(),
            timeout=settings.timeout_seconds,
        )
        return HashicorpTransit(client, settings.hashicorp_mount, settings.hashicorp_key)
    if b == "aws":
        import boto3
        from botocore.config import Config

        if not settings.aws_kms_key_id:
            raise ConfigError([("vault.aws_kms_key_id", "required for kek_backend=aws")])
        cfg = Config(
            connect_timeout=settings.timeout_seconds, read_timeout=settings.timeout_seconds
        )
        client = boto3.client(
            "kms",
            region_name=settings.aws_region or None,
            endpoint_url=settings.aws_endpoint_url or None,
            config=cfg,
        )
        return AwsKms(client, settings.aws_kms_key_id)
    if not settings.azure_key_id:
        raise ConfigError([("vault.azure_key_id", "required for kek_backend=azure")])
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.keys.crypto import CryptographyClient

    return AzureKeyVault(
        CryptographyClient(settings.azure_key_id, DefaultAzureCredential()), settings.azure_key_id
    )
