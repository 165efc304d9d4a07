"""Guard fixtures: one compiled Guard per test session (compiling the rules takes ~50 ms)."""

from __future__ import annotations

import pytest

from opsgate.guard.core import Guard
from opsgate.guard.settings import GuardSettings


@pytest.fixture(scope="session")
def guard() -> Guard:
    return Guard(GuardSettings(), hash_key=b"test-hash-key")


def types(guard: Guard, text: str, **ctx: str) -> list[tuple[str, str]]:
    from opsgate.guard.findings import ScanContext

    r = guard.scan(text, ScanContext(**ctx))  # type: ignore[arg-type]
    return [(f.type, text[f.start : f.end]) for f in r.findings if f.type != "PROMPT_INJECTION"]
