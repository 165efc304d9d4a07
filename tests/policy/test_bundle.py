"""The shipped bundle's own tests, one pytest case each, so a failing Rego test fails CI."""

from __future__ import annotations

import pytest

from opsgate.policy.bundle import DEFAULT_BUNDLE, read_bundle
from opsgate.policy.testing import CaseResult, run_tests

RESULTS: list[CaseResult] = run_tests(read_bundle(DEFAULT_BUNDLE, 1_000_000, 100_000))


def test_bundle_has_tests() -> None:
    assert len(RESULTS) >= 25


@pytest.mark.parametrize("result", RESULTS, ids=[r.name for r in RESULTS])
def test_rego(result: CaseResult) -> None:
    assert result.ok, result.message
