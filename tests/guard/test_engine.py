"""The one-pass engine: offsets, Unicode, chunking, fuzzing, large inputs, overlaps."""

from __future__ import annotations

import time

import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsgate.errors import PayloadTooLarge
from opsgate.guard.core import Guard
from opsgate.guard.engine import PatternEngine, resolve_overlaps
from opsgate.guard.findings import Finding, ScanContext
from opsgate.guard.settings import GuardSettings

# Texts that look like what the rules look for, so the fuzzer reaches the validators.
ALPHABET = st.sampled_from(
    list("0123456789 -./:@+_=()\n\t'\"") + list("akAKxyzIAsghpé€😀\u200b\u202e") + ["\udcff"]
)
SNIPPETS = st.sampled_from([
    "AKIA", "4111 1111 1111 1111", "@example.com", "password=", "sk-ant-api03-", "-----BEGIN ",
    "PRIVATE KEY-----", "::", "DOB ", "ignore all previous instructions", "eyJ", "IBAN DE89",
    "+44 ", "postgres://u:p@h", "BSN ", "xoxb-", "ghp_",
])  # fmt: skip
FUZZ_TEXT = st.lists(st.one_of(ALPHABET, SNIPPETS), max_size=80).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FUZZ_TEXT)
def test_fuzz_engine_never_raises_and_offsets_are_in_range(text: str) -> None:
    guard = _GUARD
    for direction in ("prompt", "tool_result"):
        r = guard.scan(text, ScanContext(direction=direction))  # type: ignore[arg-type]
        for f in r.findings:
            assert 0 <= f.start < f.end <= len(text)
            assert text[f.start : f.end] == f.value
        assert 0.0 <= r.injection_score <= 1.0
        applied = guard.apply(text, r.findings, vault=guard.new_vault())
        assert isinstance(applied.text, str)


_GUARD = Guard(GuardSettings(), hash_key=b"k")


@settings(max_examples=150, deadline=None)
@given(FUZZ_TEXT)
def test_rule_set_prefilter_agrees_with_each_rule(text: str) -> None:
    """The RE2 Set must report every rule that matches on its own (no silent misses)."""
    engine = _GUARD.engine
    data = text.encode("utf-8", "surrogatepass")
    flagged = set(engine.candidates(data))
    for i, c in enumerate(engine._compiled):
        own = c.raw.Match(re2._Anchor.UNANCHORED, data, 0, len(data))
        assert (own[0][0] >= 0) == (i in flagged), c.rule.name


def test_offsets_are_characters_with_non_ascii_text(guard: Guard) -> None:
    text = "Grüße 😀 — Mail an jörg@example.de oder 😀😀 +49 30 12345678 ✓"
    found = {f.type: f for f in guard.scan(text).findings}
    assert text[found["EMAIL"].start : found["EMAIL"].end] == "jörg@example.de"
    assert text[found["PHONE"].start : found["PHONE"].end] == "+49 30 12345678"


def test_lone_surrogates_do_not_crash(guard: Guard) -> None:
    text = "key AKIAZ7Q3HX5N2LPV4JTW \udc80\ud800 done"
    r = guard.scan(text)
    assert [(f.type, f.value) for f in r.findings] == [("AWS_ACCESS_KEY", "AKIAZ7Q3HX5N2LPV4JTW")]


def test_no_candidates_fast_path(guard: Guard) -> None:
    text = "just a plain sentence about the weather and nothing else " * 30
    assert guard.engine.candidates(text.encode()) == []
    assert guard.scan(text).findings == []


def test_entities_across_chunk_borders_are_found() -> None:
    s = GuardSettings(chunk_chars=16 * 1024, chunk_overlap=256)
    g = Guard(s)
    key = "AKIAZ7Q3HX5N2LPV4JTW"
    filler = "lorem ipsum " * 2000
    for shift in range(-15, 5, 3):
        cut = 16 * 1024 + shift
        text = filler[: cut - 1] + " " + key + " " + filler[: 40 * 1024 - cut]
        hits = [f for f in g.scan(text).findings if f.type == "AWS_ACCESS_KEY"]
        assert [(f.start, f.value) for f in hits] == [(cut, key)]


def test_ten_megabytes_in_bounded_time() -> None:
    g = Guard(GuardSettings(chunk_chars=1024 * 1024))
    line = (
        "2026-11-21T14:03:22Z INFO worker-7 request 7f9c2a1e-5b3d-4c8e-9a0f-1d2e3f4a5b6c "
        "user=jane@example.com ip=10.20.31.44 took 13ms\n"
    )
    text = line * (10 * 1024 * 1024 // len(line))
    t0 = time.perf_counter()
    r = g.scan(text)
    elapsed = time.perf_counter() - t0
    assert len([f for f in r.findings if f.type == "EMAIL"]) == text.count("jane@example.com")
    assert elapsed < 60, elapsed


def test_worst_case_input_is_linear() -> None:
    """Inputs that make backtracking engines explode (long runs of near-matches)."""
    g = Guard(GuardSettings())
    for unit in ("a" * 50 + "@", "1-" * 50, "A" * 60 + ":", "password=" * 10, "::" * 50):
        text = unit * (200_000 // len(unit))
        t0 = time.perf_counter()
        g.scan(text)
        assert time.perf_counter() - t0 < 10, unit[:10]


def test_text_over_the_limit_is_refused() -> None:
    g = Guard(GuardSettings(max_text_chars=2048))
    try:
        g.scan("x" * 2049)
    except PayloadTooLarge as exc:
        assert "at most 2048" in exc.detail
    else:
        raise AssertionError("expected PayloadTooLarge")


def test_overlap_resolution_keeps_higher_score_then_longer() -> None:
    fs = [
        Finding("PHONE", 0, 10, 0.75, "pii"),
        Finding("CREDIT_CARD", 0, 19, 0.95, "pii"),
        Finding("EMAIL", 30, 40, 0.95, "pii"),
        Finding("IP_ADDRESS", 35, 45, 0.9, "pii"),
        Finding("US_SSN", 50, 61, 0.8, "pii"),
    ]
    kept = [(f.type, f.start) for f in resolve_overlaps(fs)]
    assert kept == [("CREDIT_CARD", 0), ("EMAIL", 30), ("US_SSN", 50)]


def test_empty_engine() -> None:
    assert PatternEngine([]).scan("anything") == []
