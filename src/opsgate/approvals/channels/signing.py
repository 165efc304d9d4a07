"""Signatures of generic webhook deliveries: `X-OpsGate-Signature: t=<unix ts>,v1=<hex>`.

v1 = HMAC-SHA256(secret, "<ts>.<raw body>"). Binding the timestamp lets receivers refuse
replays (reject |now - t| > 300 s). The audit sink's older `sha256=<hmac of body>` header has
no timestamp, so approval notifications use this scheme instead.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-OpsGate-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: bytes, body: bytes, ts: int | None = None) -> str:
    t = int(time.time()) if ts is None else ts
    mac = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: bytes, body: bytes, header: str, *, now: float | None = None, tolerance: int = 300
) -> bool:
    """What a receiver does (also in docs/approval-channels.md)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    expected = hmac.new(secret, str(ts).encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))
