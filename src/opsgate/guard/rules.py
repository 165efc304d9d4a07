"""Pattern rules: the unit every pattern-based detector contributes to the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# (value, text, start, end) -> score, True (= the rule's score), or False/None (reject).
# `start`/`end` are character offsets of `value` in `text`, so a validator can look around.
Validator = Callable[[str, str, int, int], "float | bool | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One RE2 pattern with the checks that turn its candidates into findings.

    The value reported is the first participating capture group named `v`, `v2`, ... or
    the whole match. `context` words are looked for in `window` characters before (and
    a few after) the value: required when `context_required`, otherwise they add
    `context_boost`. `kind="signal"` rules feed a scorer (prompt injection) instead of
    producing findings directly.
    """

    name: str
    entity: str
    pattern: str
    score: float
    detector: str = "patterns"
    validator: Validator | None = None
    context: tuple[str, ...] = ()
    context_required: bool = False
    context_boost: float = 0.0
    window: int = 48
    kind: Literal["entity", "signal"] = "entity"
    weight: float = 0.0
    tags: frozenset[str] = field(default_factory=frozenset)
