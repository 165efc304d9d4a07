"""Ed25519 signing of checkpoints."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from opsgate.audit.canonical import canonical
from opsgate.keyfile import load_or_create_key


def checkpoint_message(tenant: str, size: int, root: str, last_hash: str, ts: str) -> bytes:
    return canonical(
        {"tenant": tenant, "size": size, "root": root, "last_hash": last_hash, "ts": ts}
    )


def public_key_id(pub: Ed25519PublicKey) -> str:
    return hashlib.sha256(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


class Signer:
    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._key.public_key()
        self.key_id = public_key_id(self.public)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> Signer:
        return cls(load_or_create_key(data_dir / "audit-signing.key"))

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()

    def public_hex(self) -> str:
        return self.public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def verify_signature(public_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True
