"""Chat messages through the guard (what the gateway needs), and the response filter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsgate.guard.apply import Applied
from opsgate.guard.core import Guard
from opsgate.guard.findings import Classification, Direction, ScanContext
from opsgate.guard.policy import Action, max_level
from opsgate.guard.pseudonym import PseudonymVault, StreamRestorer


@dataclass(slots=True)
class MessagesVerdict:
    classification: Classification
    injection_score: float
    vault: PseudonymVault
    blocked: bool = False
    reason: str = ""
    # Entity types found (never values).
    findings: list[str] = field(default_factory=list)
    # The messages to send on (rewritten), or None when nothing changed.
    messages: list[dict[str, Any]] | None = None
    applied: list[Applied] = field(default_factory=list)


def _direction(role: str) -> Direction:
    return "tool_result" if role in {"tool", "function"} else "prompt"


def inspect_messages(
    guard: Guard,
    messages: list[dict[str, Any]],
    actions: Mapping[str, Action] | None = None,
    vault: PseudonymVault | None = None,
) -> MessagesVerdict:
    """Scan and rewrite each message's text (string content or text parts).

    Tool messages are scanned as tool results (indirect injection thresholds).
    One vault serves the whole request, so the same value gets the same placeholder.
    """
    vault = vault or PseudonymVault()
    verdict = MessagesVerdict(guard.policy.default_classification, 0.0, vault)
    out: list[dict[str, Any]] = []
    changed = False
    types: set[str] = set()
    levels: list[Classification] = []
    for msg in messages:
        ctx = ScanContext(direction=_direction(str(msg.get("role", "user"))))
        content = msg.get("content")
        new_msg = msg
        if isinstance(content, str):
            text, a, lvl = _one(guard, content, ctx, actions, vault, verdict)
            new_msg = {**msg, "content": text} if text != content else msg
            verdict.applied.append(a)
            levels.append(lvl)
            types.update(f.type for f in a.changed_findings())
        elif isinstance(content, list):
            parts = []
            for part in content:
                if (
                    isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    text, a, lvl = _one(guard, part["text"], ctx, actions, vault, verdict)
                    parts.append({**part, "text": text} if text != part["text"] else part)
                    verdict.applied.append(a)
                    levels.append(lvl)
                    types.update(f.type for f in a.changed_findings())
                else:
                    parts.append(part)
            new_msg = {**msg, "content": parts}
        changed = changed or (new_msg is not msg and new_msg != msg)
        out.append(new_msg)
    verdict.classification = max_level(levels, guard.policy.default_classification)
    verdict.findings = sorted(types)
    verdict.messages = out if changed else None
    return verdict


def _one(
    guard: Guard,
    text: str,
    ctx: ScanContext,
    actions: Mapping[str, Action] | None,
    vault: PseudonymVault,
    verdict: MessagesVerdict,
) -> tuple[str, Applied, Classification]:
    result, applied = guard.redact(text, ctx, actions, vault=vault)
    verdict.injection_score = max(verdict.injection_score, result.injection_score)
    if applied.blocked and not verdict.blocked:
        verdict.blocked = True
        verdict.reason = applied.block_reason("prompt")
    return applied.text, applied, result.classification


class ResponseRestorer:
    """Applied to model output: scans whole responses (secrets the model emits are
    handled by policy) and restores this request's pseudonyms when `allowed`; stateful
    across a stream (`delta`/`flush`). Satisfies the gateway's `ResponseFilter`."""

    def __init__(self, guard: Guard, vault: PseudonymVault, *, allowed: bool) -> None:
        self.guard = guard
        self.vault = vault
        self.allowed = allowed
        self._stream = StreamRestorer(vault, allowed=allowed)

    def text(self, text: str) -> str:
        result = self.guard.scan(text, ScanContext(direction="response"))
        applied = self.guard.apply(text, result.findings, vault=self.vault)
        return self.vault.restore(applied.text, allowed=self.allowed)

    def delta(self, text: str) -> str:
        return self._stream.feed(text)

    def flush(self) -> str:
        return self._stream.flush()
