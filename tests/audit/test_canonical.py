from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from opsgate.audit.canonical import REDACTED, canonical, scrub

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


def test_big_ints_become_strings_and_floats_take_slow_path() -> None:
    cleaned, slow = scrub({"n": 2**60, "f": 1.0})
    assert cleaned["n"] == str(2**60)
    assert slow
    assert canonical(cleaned, slow) == b'{"f":1,"n":"1152921504606846976"}'


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
