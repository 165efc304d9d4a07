"""A small TTL cache of verified credentials.

Keyed by SHA-256 of the WHOLE presented credential: a cache keyed on a prefix let one token
impersonate another in a peer gateway (see SECURITY.md).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


def credential_digest(credential: str) -> bytes:
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).digest()


class TTLCache(Generic[V]):
    def __init__(self, ttl_seconds: float, max_entries: int = 50_000) -> None:
        self.ttl = ttl_seconds
        self.max = max_entries
        self._items: OrderedDict[bytes, tuple[float, V]] = OrderedDict()

    def get(self, key: bytes) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._items.pop(key, None)
            return None
        return value

    def put(self, key: bytes, value: V, ttl: float | None = None) -> None:
        self._items[key] = (time.monotonic() + (self.ttl if ttl is None else ttl), value)
        self._items.move_to_end(key)
        while len(self._items) > self.max:
            self._items.popitem(last=False)

    def discard_where(self, predicate: object) -> int:
        """Drop entries whose value satisfies `predicate(value)`; returns how many."""
        assert callable(predicate)
        doomed = [k for k, (_, v) in self._items.items() if predicate(v)]
        for k in doomed:
            self._items.pop(k, None)
        return len(doomed)

    def clear(self) -> None:
        self._items.clear()
