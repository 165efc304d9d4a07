"""A Merkle tree in the RFC 6962 / RFC 9162 shape.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); the tree of n leaves
splits at the largest power of two below n. `Frontier` keeps the roots of the perfect subtrees
(one per set bit of n), so appending is O(log n) and the root of the first n leaves is always
at hand without re-reading the log.
"""

from __future__ import annotations

import hashlib
from itertools import repeat
from operator import add

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256
_digest = type(_sha256()).digest


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """Perfect-subtree roots of a growing tree, largest first."""

    __slots__ = ("size", "stack")

    def __init__(self, size: int = 0, stack: list[bytes] | None = None) -> None:
        self.size = size
        self.stack: list[bytes] = stack or []

    def append(self, leaf: bytes) -> None:
        node = leaf
        n = self.size
        while n & 1:  # merge equal-sized subtrees, like binary carry
            node = node_hash(self.stack.pop(), node)
            n >>= 1
        self.stack.append(node)
        self.size += 1

    def extend(self, leaves: list[bytes]) -> None:
        """Append many leaves: the same result as `append` one by one, hashed a level at a
        time (each level is one pass of C-level maps instead of a Python loop per leaf)."""
        if not leaves:
            return
        stack = self.stack
        pos = self.size  # index of nodes[0] among the nodes of the current level
        nodes = leaves
        kept: list[bytes] = []  # unpaired last nodes, lowest level first
        while nodes:
            if pos & 1:  # nodes[0] is a right child: its left sibling is on the stack
                nodes = [stack.pop(), *nodes]
            if len(nodes) & 1:
                kept.append(nodes[-1])
            left = map(add, repeat(b"\x01"), nodes[0::2])  # zip-like: stops at the pairs
            nodes = list(map(_digest, map(_sha256, map(add, left, nodes[1::2]))))
            pos >>= 1
        stack.extend(reversed(kept))
        self.size += len(leaves)

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        node = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            node = node_hash(left, node)
        return node

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.stack))

    def to_json(self) -> list[str]:
        return [h.hex() for h in self.stack]

    @classmethod
    def from_json(cls, size: int, stack: list[str]) -> Frontier:
        f = cls(size, [bytes.fromhex(h) for h in stack])
        if len(f.stack) != bin(size).count("1"):
            raise ValueError("frontier does not match its size")
        return f


def _split(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root_of(leaves: list[bytes]) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def inclusion_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 audit path for leaf `index` in the tree of `leaves`."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError("index out of range")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(leaves[:k], index), root_of(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), root_of(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(leaves: list[bytes], m: int) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 proof that the first m leaves are a prefix of all leaves."""
    if not 0 < m <= len(leaves):
        raise ValueError("m out of range")
    return _subproof(leaves, m, True)


def _subproof(leaves: list[bytes], m: int, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_of(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves[:k], m, complete), root_of(leaves[k:])]
    return [*_subproof(leaves[k:], m - k, False), root_of(leaves[:k])]


def verify_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if m == n:
        return old == new and not proof
    if m == 0 or m > n or not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: old root is the first node
        path.insert(0, old)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old and sr == new and sn == 0
