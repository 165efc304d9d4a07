"""Turning findings into a rewritten text: mask, redact, pseudonymise, hash, block, flag."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opsgate.errors import Forbidden
from opsgate.guard.findings import INJECTION, Finding
from opsgate.guard.policy import Action, GuardPolicy
from opsgate.guard.pseudonym import PseudonymVault


class GuardBlocked(Forbidden):
    """The content guard refused the input; the detail says which entity types and where."""

    code = "guard_blocked"
    title = "Blocked by the content guard"


@dataclass(slots=True)
class Applied:
    """The rewritten text and what was done; `blocked` findings mean the input is refused."""

    text: str
    changed: list[tuple[Finding, Action]] = field(default_factory=list)
    flagged: list[Finding] = field(default_factory=list)
    blocked: list[Finding] = field(default_factory=list)

    def changed_findings(self) -> list[Finding]:
        return [f for f, _ in self.changed] + self.flagged + self.blocked

    def block_reason(self, where: str = "input") -> str:
        kinds = sorted({f.type for f in self.blocked})
        spans = ", ".join(f"{f.type} at {f.start}-{f.end}" for f in self.blocked[:5])
        return (
            f"the {where} contains {', '.join(kinds)} ({spans}), which policy does not allow "
            "to be sent; remove or replace it and try again"
        )

    def raise_if_blocked(self, where: str = "input") -> None:
        if self.blocked:
            raise GuardBlocked(self.block_reason(where))


def mask(value: str) -> str:
    """`****1234`: the last four letters/digits stay visible (nothing for short values)."""
    keep = [c for c in value if c.isalnum()]
    return "****" + "".join(keep[-4:]) if len(keep) >= 8 else "****"


def keyed_hash(key: bytes, entity: str, value: str) -> str:
    digest = hmac.new(key, f"{entity}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return f"<{entity}#{digest[:16]}>"


def apply_actions(
    text: str,
    findings: Sequence[Finding],
    policy: GuardPolicy,
    *,
    actions: Mapping[str, Action] | None = None,
    vault: PseudonymVault | None = None,
    hash_key: bytes = b"",
    restorable: bool = True,
) -> Applied:
    """Rewrite `text` by the action for each finding's type.

    `actions` (e.g. policy obligations for this request) override the policy defaults.
    Findings must not overlap (the guard resolves overlaps before this). Injection
    findings never rewrite text: they are decided on the request's injection score.
    """
    out: list[str] = []
    applied = Applied(text)
    pos = 0
    if vault is not None:
        vault.reserve(text)
    for f in sorted(findings, key=lambda f: f.start):
        if f.type == INJECTION or f.start < pos:
            continue
        action = policy.action_for(f.type, actions)
        if action is Action.BLOCK:
            applied.blocked.append(f)
            continue
        if action is Action.FLAG:
            applied.flagged.append(f)
            continue
        if action is Action.ALLOW:
            continue
        value = text[f.start : f.end]
        replacement = _replacement(action, f.type, value, vault, hash_key, restorable)
        out.append(text[pos : f.start])
        out.append(replacement)
        pos = f.end
        applied.changed.append((f, action))
    out.append(text[pos:])
    applied.text = "".join(out) if applied.changed else text
    return applied


def _replacement(
    action: Action,
    entity: str,
    value: str,
    vault: PseudonymVault | None,
    hash_key: bytes,
    restorable: bool,
) -> str:
    if action is Action.MASK:
        return mask(value)
    if action is Action.HASH:
        if not hash_key:
            raise ValueError("the hash action needs a key")
        return keyed_hash(hash_key, entity, value)
    if action is Action.PSEUDONYMISE and vault is not None:
        return vault.placeholder(entity, value, restorable=restorable)
    # redact, or pseudonymise with nowhere to keep the mapping (it could never be restored)
    return f"<{entity}>"
