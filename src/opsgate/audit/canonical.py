"""Canonical JSON (RFC 8785) for audit events, and the payload scrubber.

`rfc8785` is the reference encoder but costs ~47 µs per event in pure Python; orjson with
sorted keys produces byte-identical output for strings, ints, bools, null, lists and objects
with BMP keys, and non-integral floats of magnitude 1e-4 to 1e15 (property-tested against
rfc8785 in tests/audit/test_canonical.py); integral floats are stored as the integers
RFC 8785 writes them as. Values where the two differ (other floats, keys with astral
characters) take the rfc8785 path; integers beyond 2^53 are not valid I-JSON and
become strings.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
import rfc8785

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32
MAX_STRING = 8192

# Keys whose values are never stored, whatever a component passes (defence in depth: callers
# must not put secrets in payloads in the first place).
SECRET_KEYS = re.compile(
    r"(?i)^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[_-]?key|"
    r"apikey|password|passwd|secret|client[_-]?secret|token|access[_-]?token|"
    r"refresh[_-]?token|id[_-]?token|private[_-]?key|plaintext|credential|credentials)$"
)
# Credential shapes redacted inside any string value.
SECRET_VALUES = re.compile(
    r"(?:ogk_[a-z0-9]{12}_[A-Za-z0-9_-]{20,}"
    r"|sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,})"
)
REDACTED = "[redacted]"
_FLOAT_FAST_MIN, _FLOAT_FAST_MAX = 1e-4, 1e15
# Every SECRET_VALUES alternative contains one of these literals (case-insensitively only for
# "bearer"). Python's re tries the whole alternation at every position (~1 µs for 64
# characters); a few substring searches (~0.2 µs) clear the usual digest or sentence first.
# tests/audit/test_canonical.py checks that the hint test accepts every string the pattern
# matches.
_HINTS = ("ogk_", "sk-", "AKIA", "ASIA", "xox", "eyJ", "-----BEGIN")


def _may_hold_secret(value: str) -> bool:
    if not value.isascii():
        return True  # case folding beyond ASCII: let the pattern decide
    for hint in _HINTS:
        if hint in value:
            return True
    return ("gh" in value and "_" in value) or "bearer" in value.lower()


def redact_secrets(value: str) -> str:
    """Credential-shaped runs in `value` replaced by [redacted]."""
    return SECRET_VALUES.sub(REDACTED, value) if _may_hold_secret(value) else value


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# key -> (is a secret key, has astral characters). Payload keys repeat endlessly (the same
# event shapes), so each is classified once; bounded so odd inputs cannot grow it.
_KEYS: dict[str, tuple[bool, bool]] = {}
_KEYS_MAX = 4096


def _key_info(key: str) -> tuple[bool, bool]:
    info = _KEYS.get(key)
    if info is None:
        info = (
            SECRET_KEYS.match(key) is not None,
            not key.isascii() and _ASTRAL.search(key) is not None,
        )
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[key] = info
    return info


class _Flags:
    __slots__ = ("slow",)

    def __init__(self) -> None:
        self.slow = False


def _clean(value: Any, flags: _Flags, depth: int) -> Any:
    t = type(value)
    if t is str:
        if len(value) > MAX_STRING:
            value = value[:MAX_STRING] + "…[truncated]"
        return redact_secrets(value) if len(value) >= 16 else value
    if t is dict:
        if depth >= MAX_DEPTH:
            return "[too deep]"
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            secret, astral = _KEYS.get(key) or _key_info(key)
            if astral:
                flags.slow = True
            if secret:
                out[key] = REDACTED
                continue
            tv = type(v)
            # The common leaves inline (this runs for every field of every audit event).
            if tv is str:
                if len(v) < 16:
                    out[key] = v
                elif len(v) <= MAX_STRING:
                    out[key] = redact_secrets(v)
                else:
                    out[key] = _clean(v, flags, depth + 1)
            elif v is None or tv is bool or (tv is int and -MAX_SAFE_INT <= v <= MAX_SAFE_INT):
                out[key] = v
            else:
                out[key] = _clean(v, flags, depth + 1)
        return out
    if t is list:
        if depth >= MAX_DEPTH:
            return "[too deep]"
        return [v if type(v) is str and len(v) < 16 else _clean(v, flags, depth + 1) for v in value]
    if value is None or t is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return int(value)  # RFC 8785 writes 2.0 as 2: the same bytes, on the fast path
        # orjson writes non-integral floats in this range exactly as RFC 8785 does (checked
        # on >1M random values, and property-tested); others (1e-7, 1e21) differ.
        if not (_FLOAT_FAST_MIN <= abs(value) < _FLOAT_FAST_MAX):
            flags.slow = True
        return float(value)
    if isinstance(value, str):
        return _clean(str(value), flags, depth)
    if depth >= MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, dict):
        return _clean(dict(value), flags, depth)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, flags, depth + 1) for v in value]
    return _clean(str(value), flags, depth + 1)


def scrub_text(value: str) -> str:
    """One string, scrubbed like a payload value."""
    out = _clean(value, _Flags(), 0)
    assert isinstance(out, str)
    return out


def scrub(payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Secrets removed, values made I-JSON; also says whether rfc8785 must encode it."""
    flags = _Flags()
    cleaned = _clean(payload, flags, 0)
    assert isinstance(cleaned, dict)
    return cleaned, flags.slow


def canonical(obj: dict[str, Any], slow: bool = False) -> bytes:
    """RFC 8785 bytes of an already scrubbed object."""
    if slow:
        return rfc8785.dumps(obj)
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
