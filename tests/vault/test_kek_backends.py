"""KEK backends through their real client libraries against wire-compatible local servers."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opsgate.db.engine import Database
from opsgate.settings import Settings
from opsgate.vault.kek import (
    AwsKms,
    AzureKeyVault,
    HashicorpTransit,
    VaultIntegrityError,
    build_kek,
)
from opsgate.vault.service import VaultService
from opsgate.vault.settings import VaultSettings
from tests.conftest import migrated


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Transit(BaseHTTPRequestHandler):
    """The transit engine's encrypt/decrypt/rotate endpoints with versioned AES-GCM keys."""

    keys: dict[int, bytes] = {}
    token = "s.test-token"

    def log_message(self, *args: Any) -> None:
        return None

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        if self.headers.get("X-Vault-Token") != self.token:
            return self._reply(403, {"errors": ["permission denied"]})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        parts = self.path.strip("/").split(
            "/"
        )  # v1/transit/<op>/<key> | v1/transit/keys/<key>/rotate
        op = parts[2]
        if op == "keys" and parts[-1] == "rotate":
            self.keys[max(self.keys) + 1] = secrets.token_bytes(32)
            return self._reply(204, {})
        if op == "encrypt":
            v = max(self.keys)
            nonce = secrets.token_bytes(12)
            ct = AESGCM(self.keys[v]).encrypt(nonce, base64.b64decode(body["plaintext"]), None)
            return self._reply(
                200,
                {"data": {"ciphertext": f"vault:v{v}:" + base64.b64encode(nonce + ct).decode()}},
            )
        if op == "decrypt":
            try:
                _, ver, blob = body["ciphertext"].split(":", 2)
                raw = base64.b64decode(blob)
                pt = AESGCM(self.keys[int(ver[1:])]).decrypt(raw[:12], raw[12:], None)
            except Exception:
                return self._reply(400, {"errors": ["invalid ciphertext: unable to decrypt"]})
            return self._reply(200, {"data": {"plaintext": base64.b64encode(pt).decode()}})
        return self._reply(404, {"errors": []})


@pytest.fixture
def transit_url() -> Iterator[str]:
    _Transit.keys = {1: secrets.token_bytes(32)}
    port = _free_port()
    srv = ThreadingHTTPServer(("127.0.0.1", port), _Transit)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()


async def _roundtrip(settings: Settings, vault: VaultService) -> None:
    await vault.put("default", "svc", "value-1", actor="t")
    assert (await vault.get("default", "svc")).reveal() == "value-1"
    assert await vault.rotate_kek(["default"]) == 1
    assert (await vault.get("default", "svc")).reveal() == "value-1"


async def test_hashicorp_transit_with_hvac(settings: Settings, transit_url: str) -> None:
    await migrated(settings)
    s = VaultSettings(
        kek_backend="hashicorp", hashicorp_url=transit_url, hashicorp_token=_Transit.token
    )
    kek = build_kek(s, settings.data_dir)
    assert isinstance(kek, HashicorpTransit)
    db = Database(settings.database_url)
    vault = VaultService(db, kek)
    await _roundtrip(settings, vault)
    assert max(_Transit.keys) == 2  # rotated inside Vault
    async with db.engine.connect() as conn:
        from sqlalchemy import text

        wrapped = (await conn.execute(text("select wrapped_dek from secrets"))).scalar_one()
    assert wrapped.startswith(b"vault:v2:")
    await db.dispose()


async def test_aws_kms_with_boto3_against_moto_server(settings: Settings) -> None:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        import boto3

        url = f"http://127.0.0.1:{port}"
        kms = boto3.client(
            "kms",
            region_name="eu-west-1",
            endpoint_url=url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        await migrated(settings)
        db = Database(settings.database_url)
        vault = VaultService(db, AwsKms(kms, key_id))
        await _roundtrip(settings, vault)
        # the encryption context binds the wrapped key to tenant/name/version
        with pytest.raises(VaultIntegrityError):
            await AwsKms(kms, key_id).unwrap(
                (await AwsKms(kms, key_id).wrap(b"k" * 32, b"a"))[0], "aws:x", b"b"
            )
        await db.dispose()
    finally:
        server.stop()


class _FakeAzureCrypto:
    """Duck-typed CryptographyClient: proves our adapter's calls, not Azure itself."""

    def __init__(self) -> None:
        self.key = secrets.token_bytes(32)
        self.calls: list[str] = []

    def wrap_key(self, alg: Any, key: bytes) -> Any:
        self.calls.append(f"wrap:{alg}")
        nonce = secrets.token_bytes(12)
        return type(
            "R",
            (),
            {
                "encrypted_key": nonce + AESGCM(self.key).encrypt(nonce, key, None),
                "key_id": "kv/k/1",
            },
        )()

    def unwrap_key(self, alg: Any, blob: bytes) -> Any:
        self.calls.append(f"unwrap:{alg}")
        return type("R", (), {"key": AESGCM(self.key).decrypt(blob[:12], blob[12:], None)})()


async def test_azure_adapter(settings: Settings) -> None:
    await migrated(settings)
    crypto = _FakeAzureCrypto()
    db = Database(settings.database_url)
    vault = VaultService(db, AzureKeyVault(crypto, "https://v.vault.azure.net/keys/k"))
    await vault.put("default", "svc", "az", actor="t")
    assert (await vault.get("default", "svc")).reveal() == "az"
    assert crypto.calls and all(
        "RSA-OAEP-256" in c or "rsa_oaep_256" in c.lower() for c in crypto.calls
    )
    await db.dispose()


def test_backend_config_errors(settings: Settings) -> None:
    for update in (
        {"kek_backend": "env"},
        {"kek_backend": "hashicorp"},
        {"kek_backend": "aws"},
        {"kek_backend": "azure"},
        {"kek_backend": "env", "env_key": "not base64!!"},
    ):
        with pytest.raises(Exception, match="vault\\."):
            build_kek(VaultSettings.model_validate(update), settings.data_dir)
