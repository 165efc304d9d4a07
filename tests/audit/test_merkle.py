"""Merkle tree against a direct transcription of RFC 6962's MTH definition."""

from __future__ import annotations

import hashlib

import pytest

from opsgate.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def mth(data: list[bytes]) -> bytes:
    """RFC 6962 2.1, written independently of the module under test."""
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


DATA = [f"event-{i}".encode() for i in range(70)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 64, 70])
def test_frontier_and_root_match_rfc(n: int) -> None:
    f = Frontier()
    for d in DATA[:n]:
        f.append(leaf_hash(d))
    assert f.root() == mth(DATA[:n])
    assert root_of([leaf_hash(d) for d in DATA[:n]]) == mth(DATA[:n])
    g = Frontier.from_json(n, f.to_json())
    assert g.root() == f.root()
    assert mth([]) == EMPTY_ROOT


def test_inclusion_proofs_verify_and_detect_changes() -> None:
    leaves = [leaf_hash(d) for d in DATA[:37]]
    root = mth(DATA[:37])
    for i in range(37):
        p = inclusion_proof(leaves, i)
        assert verify_inclusion(leaves[i], i, 37, p, root)
        assert not verify_inclusion(leaf_hash(b"forged"), i, 37, p, root)
        if p:
            bad = [bytes(32), *p[1:]]
            assert not verify_inclusion(leaves[i], i, 37, bad, root)


def test_consistency_proofs() -> None:
    leaves = [leaf_hash(d) for d in DATA]
    for m in range(1, 70):
        for n in (m, m + 1, 70):
            p = consistency_proof(leaves[:n], m)
            assert verify_consistency(m, n, mth(DATA[:m]), mth(DATA[:n]), p), (m, n)
            if m < n:
                assert not verify_consistency(m, n, mth(DATA[1 : m + 1]), mth(DATA[:n]), p)


def test_frontier_rejects_mismatched_size() -> None:
    with pytest.raises(ValueError, match="frontier"):
        Frontier.from_json(3, ["00" * 32])


@pytest.mark.parametrize("start", [0, 1, 2, 3, 5, 8, 13, 31, 32])
def test_frontier_extend_matches_append(start: int) -> None:
    leaves = [leaf_hash(d) for d in DATA]
    for chunk in (1, 2, 3, 7, 16, 37):
        f = Frontier()
        f.extend(leaves[:start])
        for i in range(start, len(leaves), chunk):
            f.extend(leaves[i : i + chunk])
            n = min(i + chunk, len(leaves))
            assert f.size == n and f.root() == mth(DATA[:n]), (start, chunk, n)
        g = Frontier()
        for leaf in leaves:
            g.append(leaf)
        assert f.stack == g.stack
    f.extend([])
    assert f.size == len(leaves)
