"""The one-pass pattern engine.

All pattern rules (PII, secrets, injection signals, a tenant's custom rules) are compiled
into one RE2 `Set`: a single linear-time DFA pass over the text says which rules can match
at all. Only those rules are then run individually to get positions, and only their
candidates go through validators (Luhn, mod-97, checksums, phonenumbers). Text with no
candidate returns after that first pass. RE2 guarantees linear time: no pattern here can
backtrack catastrophically, whatever the input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2

from opsgate.guard.findings import Finding
from opsgate.guard.rules import Rule

# RE2 program/DFA budget per compiled pattern set. The DFA cache is reset when full, so
# this bounds memory, not correctness; it is large enough that the combined set compiles.
_MAX_MEM = 256 << 20
_ENCODING = "utf-8"
_ERRORS = "surrogatepass"  # lone surrogates from JSON escapes must not crash a scan


class RuleError(ValueError):
    """A rule's pattern does not compile under RE2; `position` is where, when known."""

    def __init__(self, rule: str, message: str, position: int | None = None) -> None:
        self.rule = rule
        self.position = position
        super().__init__(f"rule {rule!r}: {message}")


def re2_options(max_mem: int = _MAX_MEM) -> Any:
    opts = re2.Options()
    opts.max_mem = max_mem
    opts.log_errors = False  # errors are raised to the caller, not printed to stderr
    return opts


def compile_re2(pattern: str, *, name: str = "pattern", max_mem: int = 8 << 20) -> Any:
    """Compile `pattern` with RE2, raising `RuleError` with the failing position if any."""
    try:
        return re2.compile(pattern, re2_options(max_mem))
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        raise RuleError(
            name, message or "invalid pattern", _error_position(pattern, message)
        ) from None


def _error_position(pattern: str, message: str) -> int | None:
    if message.startswith("missing )"):
        depth_stack: list[int] = []
        escaped = False
        for i, ch in enumerate(pattern):
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "(":
                depth_stack.append(i)
            elif ch == ")" and depth_stack:
                depth_stack.pop()
        return depth_stack[-1] if depth_stack else None
    # RE2 quotes the offending fragment ("invalid perl operator: (?="); locate it.
    if ": " in message:
        fragment = message.rsplit(": ", 1)[1]
        idx = pattern.find(fragment) if fragment else -1
        return idx if idx >= 0 else None
    return None


@dataclass(slots=True)
class _Compiled:
    rule: Rule
    raw: Any  # the compiled RE2 object (re2._re2.RE2): matched on bytes without the
    # per-call re-encoding and generator overhead of the re2 module's str API
    value_groups: tuple[int, ...]
    context_any: Any | None  # RE2, whole text: is any context word present at all?
    context_window: re.Pattern[str] | None  # literal words only, run on short windows


class _Offsets:
    """Byte offsets of the UTF-8 encoding -> character offsets, for non-ASCII text."""

    def __init__(self, data: bytes, ascii_only: bool) -> None:
        self.data = data
        self.ascii = ascii_only
        self._last_b = 0
        self._last_c = 0

    def char(self, b: int) -> int:
        if self.ascii:
            return b
        if b < self._last_b:
            self._last_b = self._last_c = 0
        chunk = self.data[self._last_b : b]
        self._last_c += len(chunk.decode(_ENCODING, _ERRORS))
        self._last_b = b
        return self._last_c


@dataclass(slots=True)
class Hit:
    """A validated pattern match, before overlap resolution."""

    rule: Rule
    start: int
    end: int
    score: float
    value: str


_UNANCHORED = re2._Anchor.UNANCHORED


def _context_patterns(rule: Rule) -> tuple[Any | None, re.Pattern[str] | None]:
    if not rule.context:
        return None, None
    words = "|".join(re2.escape(w) for w in rule.context)
    any_rx = compile_re2(rf"(?i)(?:^|[^a-z0-9])(?:{words})", name=f"{rule.name}.context")
    # Python's re on a bounded window of a few dozen characters, over a plain
    # alternation of escaped literals: no nested quantifiers, so no backtracking blow-up.
    literal = "|".join(re.escape(w.lower()) for w in rule.context)
    window_rx = re.compile(rf"(?:^|[^a-z0-9])(?:{literal})")
    return any_rx._regexp, window_rx


class PatternEngine:
    """Compiled rules; `scan(text)` returns validated hits (entities and signals)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._compiled: list[_Compiled] = []
        self._set = re2.Set.SearchSet(re2_options())
        for rule in self.rules:
            rx = compile_re2(rule.pattern, name=rule.name)
            groups = rx.groupindex
            value_groups = tuple(
                groups[g] for g in sorted(groups, key=lambda g: groups[g]) if g.startswith("v")
            )
            any_rx, window_rx = _context_patterns(rule)
            self._compiled.append(_Compiled(rule, rx._regexp, value_groups, any_rx, window_rx))
            if self._set.Add(rule.pattern) != len(self._compiled) - 1:
                raise RuleError(rule.name, "could not be added to the rule set")
        if self.rules:
            self._set.Compile()

    def candidates(self, data: bytes) -> list[int]:
        """Indices of the rules that match somewhere in `data` (one DFA pass)."""
        if not self.rules:
            return []
        return sorted(self._set.Match(data) or ())

    def scan(self, text: str) -> list[Hit]:
        data = text.encode(_ENCODING, _ERRORS)
        hits: list[Hit] = []
        indices = self.candidates(data)
        if not indices:
            return hits
        offsets = _Offsets(data, len(data) == len(text))
        for idx in indices:
            c = self._compiled[idx]
            if c.rule.context_required and not _found(c.context_any, data):
                continue
            self._run(c, text, data, offsets, hits)
        return hits

    def _run(self, c: _Compiled, text: str, data: bytes, offsets: _Offsets, out: list[Hit]) -> None:
        rule = c.rule
        pos, limit = 0, len(data)
        while pos <= limit:
            spans = c.raw.Match(_UNANCHORED, data, pos, limit)
            ms, me = spans[0]
            if ms < 0:
                return
            pos = me if me > ms else me + 1
            bs, be = ms, me
            for g in c.value_groups:
                if spans[g][0] >= 0:
                    bs, be = spans[g]
                    break
            if be <= bs:
                continue
            start, end = offsets.char(bs), offsets.char(be)
            value = text[start:end]
            score = rule.score
            if c.context_window is not None:
                found = _near(c.context_window, text, start, end, rule.window)
                if rule.context_required and not found:
                    continue
                if found:
                    score = min(1.0, score + rule.context_boost)
            if rule.validator is not None:
                verdict = rule.validator(value, text, start, end)
                if verdict is None or verdict is False:
                    continue
                if verdict is not True:
                    # A validator's own score; context words still add their boost.
                    score = min(1.0, float(verdict) + (score - rule.score))
            out.append(Hit(rule, start, end, score, value))


def _found(raw: Any, data: bytes) -> bool:
    return bool(raw.Match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)


def _near(rx: re.Pattern[str], text: str, start: int, end: int, window: int) -> bool:
    before = text[max(0, start - window) : start].lower()
    if rx.search(before) is not None:
        return True
    return rx.search(text[end : end + 16].lower()) is not None


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """Keep the best of overlapping findings: higher score, then the longer span.

    Works cluster by cluster (runs of mutually reachable overlaps), so the cost stays
    linear in the number of findings for ordinary texts.
    """
    ordered = sorted(findings, key=lambda f: (f.start, f.end))
    kept: list[Finding] = []
    cluster: list[Finding] = []
    cluster_end = -1
    for f in ordered:
        if cluster and f.start >= cluster_end:
            kept.extend(_best_of(cluster))
            cluster = []
        cluster.append(f)
        cluster_end = max(cluster_end, f.end) if len(cluster) > 1 else f.end
    kept.extend(_best_of(cluster))
    return kept


def _best_of(cluster: list[Finding]) -> list[Finding]:
    if len(cluster) < 2:
        return cluster
    ranked = sorted(cluster, key=lambda f: (-f.score, -(f.end - f.start), f.start))
    chosen: list[Finding] = []
    for f in ranked:
        if all(f.end <= c.start or c.end <= f.start for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: (f.start, f.end))
