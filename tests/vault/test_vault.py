"""Envelope encryption: integrity, binding, rotation, no plaintext at rest or in logs."""

from __future__ import annotations

import base64
import logging
import secrets
from pathlib import Path

import pytest
from sqlalchemy import text, update

from opsgate.db.engine import Database
from opsgate.errors import NotFound, PayloadTooLarge, ValidationFailed
from opsgate.settings import Settings
from opsgate.vault.kek import EnvKey, LocalKeyring, VaultIntegrityError
from opsgate.vault.models import StoredSecret
from opsgate.vault.service import VaultService
from tests.conftest import AppHarness, migrated

CANARY = "CANARY-sk-live-9f8e7d6c5b4a39281706"


@pytest.fixture
async def vault(settings: Settings) -> VaultService:
    await migrated(settings)
    db = Database(settings.database_url)
    await db.ensure_tenant("acme")
    return VaultService(db, LocalKeyring(settings.data_dir / "kek.keyring"))


async def test_put_get_and_versions(vault: VaultService) -> None:
    info = await vault.put("default", "openai", CANARY, actor="t")
    assert info.version == 1
    assert (await vault.get("default", "openai")).reveal() == CANARY
    assert CANARY not in repr(await vault.get("default", "openai"))
    info = await vault.put("default", "openai", "v2", actor="t")
    assert info.version == 2
    assert (await vault.resolve("default", "secret://openai")).reveal() == "v2"
    with pytest.raises(NotFound):
        await vault.get("acme", "openai")  # per tenant


@pytest.mark.parametrize("column", ["ciphertext", "nonce", "wrapped_dek"])
async def test_any_flipped_byte_fails(vault: VaultService, column: str) -> None:
    await vault.put("default", "k", CANARY, actor="t")
    async with vault.db.engine.connect() as conn:
        blob = (
            await conn.execute(text(f"select {column} from secrets where name='k'"))
        ).scalar_one()

    async def store(value: bytes) -> None:
        async with vault.db.engine.begin() as conn:
            await conn.execute(
                update(StoredSecret).where(StoredSecret.name == "k").values({column: value})
            )

    for i in (0, len(blob) // 2, len(blob) - 1):
        flipped = bytearray(blob)
        flipped[i] ^= 0x01
        await store(bytes(flipped))
        with pytest.raises(VaultIntegrityError):
            await vault.get("default", "k")
    await store(blob)
    assert (await vault.get("default", "k")).reveal() == CANARY


async def test_cross_tenant_and_version_swaps_fail(vault: VaultService) -> None:
    await vault.put("default", "db", "default-password", actor="t")
    await vault.put("acme", "db", "acme-password", actor="t")
    async with vault.db.engine.begin() as conn:
        a = (
            await conn.execute(
                text(
                    "select ciphertext, nonce, wrapped_dek, kek_id from secrets where tenant_id='acme'"
                )
            )
        ).one()
        await conn.execute(
            text(
                "update secrets set ciphertext=:c, nonce=:n, wrapped_dek=:w, kek_id=:k where tenant_id='default'"
            ),
            {"c": a[0], "n": a[1], "w": a[2], "k": a[3]},
        )
    with pytest.raises(VaultIntegrityError):
        await vault.get("default", "db")
    await vault.put("acme", "db", "acme-v2", actor="t")
    async with vault.db.engine.begin() as conn:
        await conn.execute(text("update secrets set version = 1 where tenant_id='acme'"))
    with pytest.raises(VaultIntegrityError):
        await vault.get("acme", "db")


async def test_rotation_rewraps_without_touching_ciphertext(
    vault: VaultService, settings: Settings
) -> None:
    await vault.put("default", "a", "alpha", actor="t")
    await vault.put("acme", "b", "beta", actor="t")
    async with vault.db.engine.connect() as conn:
        before = dict((await conn.execute(text("select name, ciphertext from secrets"))).all())
        kek_before = set((await conn.execute(text("select kek_id from secrets"))).scalars())
    assert await vault.rotate_kek(["default", "acme"]) == 2
    async with vault.db.engine.connect() as conn:
        after = dict((await conn.execute(text("select name, ciphertext from secrets"))).all())
        kek_after = set((await conn.execute(text("select kek_id from secrets"))).scalars())
    assert before == after and kek_before.isdisjoint(kek_after)
    # a fresh process reading the keyring sees the same keys
    fresh = VaultService(vault.db, LocalKeyring(settings.data_dir / "kek.keyring"))
    assert (await fresh.get("default", "a")).reveal() == "alpha"
    assert (await fresh.get("acme", "b")).reveal() == "beta"


async def test_database_dump_alone_reveals_nothing(vault: VaultService, settings: Settings) -> None:
    await vault.put("default", "x", CANARY, actor="t")
    await vault.db.dispose()
    for f in settings.data_dir.glob("opsgate.db*"):
        assert CANARY.encode() not in f.read_bytes()
    # the key file is what opens it: without it, the wrapped key cannot be unwrapped
    other = VaultService(
        Database(settings.database_url), LocalKeyring(settings.data_dir / "other.keyring")
    )
    with pytest.raises(VaultIntegrityError):
        await other.get("default", "x")


async def test_bad_names_and_sizes(vault: VaultService) -> None:
    for name in ("", "UPPER", "../etc", "a" * 65, "sp ace", "-lead"):
        with pytest.raises(ValidationFailed):
            await vault.put("default", name, "v", actor="t")
    with pytest.raises(PayloadTooLarge):
        await vault.put("default", "big", "x" * (64 * 1024 + 1), actor="t")
    with pytest.raises(ValidationFailed):
        await vault.resolve("default", "http://evil")


async def test_env_kek_with_previous_key(settings: Settings) -> None:
    await migrated(settings)
    db = Database(settings.database_url)
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    v1 = VaultService(db, EnvKey(k1, []))
    await v1.put("default", "s", "old-key-secret", actor="t")
    v2 = VaultService(db, EnvKey(k2, [k1]))
    assert (await v2.get("default", "s")).reveal() == "old-key-secret"
    await v2.rotate_kek(["default"])
    v3 = VaultService(db, EnvKey(k2, []))
    assert (await v3.get("default", "s")).reveal() == "old-key-secret"
    await db.dispose()


async def test_api_is_write_only_and_audited(
    harness: AppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = harness
    r = await h.client.put(
        "/api/v1/secrets/openai", json={"value": CANARY, "description": "prod"}, headers=h.auth()
    )
    assert r.status_code == 200, r.text
    assert CANARY not in r.text and r.json()["reference"] == "secret://openai"
    listed = await h.client.get("/api/v1/secrets", headers=h.auth())
    assert CANARY not in listed.text and listed.json()[0]["name"] == "openai"
    for method in ("GET", "POST", "PATCH"):
        r = await h.client.request(method, "/api/v1/secrets/openai", headers=h.auth())
        assert r.status_code in (404, 405)
        assert CANARY not in r.text
    r = await h.client.put("/api/v1/secrets/BAD NAME", json={"value": "x"}, headers=h.auth())
    assert r.status_code in (404, 422)
    r = await h.client.put(
        "/api/v1/secrets/ok", json={"value": "x", "tenant": "acme"}, headers=h.auth()
    )
    assert r.status_code == 422
    r = await h.client.post("/api/v1/secrets/rotate-kek", headers=h.auth())
    assert r.status_code == 200 and r.json()["rewrapped"] == 1
    assert (await h.runtime.vault.get("default", "openai")).reveal() == CANARY
    audit = await h.client.get(
        "/api/v1/audit", params={"action_prefix": "secret."}, headers=h.auth()
    )
    assert {e["action"] for e in audit.json()["items"]} == {"secret.put", "secret.rotate_kek"}
    assert CANARY not in audit.text
    assert CANARY not in caplog.text


async def test_keyring_permissions_enforced(tmp_path: Path) -> None:
    p = tmp_path / "kek.keyring"
    LocalKeyring(p)
    assert p.stat().st_mode & 0o777 == 0o600
    p.chmod(0o644)
    with pytest.raises(Exception, match="0600"):
        LocalKeyring(p)


def test_env_key_must_be_32_bytes() -> None:
    with pytest.raises(Exception, match="32 bytes"):
        EnvKey(base64.b64decode(base64.b64encode(b"short")), [])
