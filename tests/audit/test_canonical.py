from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from opsgate.audit.canonical import REDACTED, SECRET_VALUES, canonical, redact_secrets, scrub

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_fast_path_is_byte_identical_to_rfc8785(obj: dict[str, Any]) -> None:
    cleaned, slow = scrub({"p": obj})
    # keys that look like secret names are replaced: compare on the cleaned object
    assert canonical(cleaned, slow) == rfc8785.dumps(cleaned)


@settings(max_examples=2000, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-4, max_value=1e15)
    | st.floats(min_value=-1e3, max_value=1e3).map(lambda f: round(f, 3))
)
def test_floats_are_canonical_on_either_path(value: float) -> None:
    cleaned, slow = scrub({"f": value, "nested": [value]})
    assert canonical(cleaned, slow) == rfc8785.dumps(cleaned)


def test_big_ints_become_strings_and_odd_floats_take_slow_path() -> None:
    cleaned, slow = scrub({"n": 2**60, "f": 1.5e-7})
    assert cleaned["n"] == str(2**60)
    assert slow
    assert canonical(cleaned, slow) == b'{"f":1.5e-7,"n":"1152921504606846976"}'
    # plain fractions and integral floats stay on the fast path, with RFC 8785's bytes
    for value, text in ((0.125, b"0.125"), (0.0, b"0"), (-0.0, b"0"), (2.0, b"2")):
        cleaned, slow = scrub({"f": value})
        assert not slow and canonical(cleaned) == b'{"f":' + text + b"}" == rfc8785.dumps(
            {"f": value}
        )
    assert scrub({"huge": 1e300})[1]


def test_scrub_removes_secrets_by_key_and_by_shape() -> None:
    canary = "sk-proj-CANARYcanaryCANARY0123456789"
    cleaned, _ = scrub(
        {
            "Authorization": "Bearer abc.def.ghi",
            "nested": {"api_key": "x", "note": f"the key is {canary} ok"},
            "list": [f"ogk_abcdefghijkm_{'Z' * 43}", "AKIAABCDEFGHIJKLMNOP"],
            "fine": "hello",
        }
    )
    text = str(cleaned)
    assert canary not in text and "AKIA" not in text and "ogk_" not in text
    assert cleaned["Authorization"] == REDACTED and cleaned["nested"]["api_key"] == REDACTED
    assert cleaned["fine"] == "hello"


def test_scrub_bounds_depth() -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(200):
        cur["a"] = {}
        cur = cur["a"]
    cleaned, _ = scrub(deep)
    assert "[too deep]" in str(cleaned)


# Credential shapes (one per SECRET_VALUES alternative, with case variants of "bearer") and
# filler, so the strings below mix real matches with near misses.
_SHAPES = [
    "ogk_abcdefghijkm_" + "Z" * 22,
    "sk-" + "a" * 24,
    "sk-ant-" + "b" * 24,
    "AKIA" + "A" * 16,
    "ASIA" + "7" * 16,
    "ghp_" + "x" * 36,
    "ghs_" + "y" * 40,
    "xoxb-" + "1" * 12,
    "eyJabcdefghij.eyJabcdefghij.signature1",
    "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
    "Bearer " + "t" * 20,
    "bEaReR\t" + "u" * 18,
    "BEARER  " + "v" * 16,
]
_PIECES = st.one_of(
    st.sampled_from(_SHAPES),
    st.sampled_from(["gh", "_", "sk", "-", "AKI", "ey", "bear", "er ", "xo", "x"]),
    st.text(max_size=12),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=6).map("".join))
def test_secret_prefilter_never_skips_a_match(text: str) -> None:
    # The substring hints in front of the pattern are a speed-up only: the result must be
    # exactly what the pattern alone gives, for any string.
    assert redact_secrets(text) == SECRET_VALUES.sub(REDACTED, text)


def test_every_shape_is_redacted() -> None:
    for shape in _SHAPES:
        assert REDACTED in redact_secrets(f"before {shape} after"), shape
