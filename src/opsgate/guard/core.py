"""`Guard`: scan text for entities and injection, then apply actions. A pure library.

One `Guard` holds one compiled rule set (built-in rules plus, optionally, one tenant's
custom rules) and optional extra detectors (NER). It is immutable and safe to share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opsgate.errors import PayloadTooLarge
from opsgate.guard.apply import Applied, apply_actions
from opsgate.guard.custom import CustomRule, policy_entries, to_rules
from opsgate.guard.detector import Detector
from opsgate.guard.engine import Hit, PatternEngine, resolve_overlaps
from opsgate.guard.findings import Finding, ScanContext, ScanResult
from opsgate.guard.injection import InjectionClassifier, injection_findings, injection_rules
from opsgate.guard.pii import pii_rules
from opsgate.guard.policy import Action, GuardPolicy
from opsgate.guard.pseudonym import PseudonymVault, StreamRestorer
from opsgate.guard.rules import Rule
from opsgate.guard.secrets import secret_rules
from opsgate.guard.settings import GuardSettings


def builtin_rules(settings: GuardSettings) -> list[Rule]:
    rules = [*pii_rules(tuple(settings.phone_regions)), *secret_rules()]
    if settings.injection.enabled:
        rules.extend(injection_rules())
    return rules


@dataclass(slots=True)
class InjectionVerdict:
    score: float
    flagged: bool
    blocked: bool


class Guard:
    """Scans text and applies actions. See docs/guard.md for detectors and defaults."""

    def __init__(
        self,
        settings: GuardSettings,
        *,
        hash_key: bytes = b"",
        custom: Sequence[CustomRule] = (),
        tenant: str = "default",
        detectors: Sequence[Detector] = (),
        classifiers: Sequence[InjectionClassifier] = (),
        ner_note: str | None = None,
    ) -> None:
        self.settings = settings
        self.hash_key = hash_key
        self.tenant = tenant
        self.engine = PatternEngine([*builtin_rules(settings), *to_rules(custom, tenant)])
        actions, levels = policy_entries(custom)
        self.policy = GuardPolicy.from_settings(settings).with_entries(actions, levels)
        self.detectors = tuple(detectors)
        self.classifiers = tuple(classifiers)
        self.ner_on = any(d.name == "ner" for d in self.detectors)
        self._ner_note = ner_note

    # --- scanning -------------------------------------------------------------------

    def scan(self, text: str, context: ScanContext | None = None) -> ScanResult:
        """Findings (entities and injection signals), the classification they imply and
        the injection score. Raises `PayloadTooLarge` over `max_text_chars`."""
        ctx = context or ScanContext()
        if len(text) > self.settings.max_text_chars:
            raise PayloadTooLarge(
                f"text is {len(text)} characters; the guard accepts at most "
                f"{self.settings.max_text_chars}"
            )
        hits = self._pattern_hits(text)
        entities = [
            Finding(h.rule.entity, h.start, h.end, h.score, h.rule.detector, h.value)
            for h in hits
            if h.rule.kind == "entity" and h.score >= self.settings.min_score
        ]
        notes: list[str] = []
        for det in self.detectors:
            entities.extend(f for f in det.find(text, ctx) if f.score >= self.settings.min_score)
            if det.name == "ner" and len(text) > self.settings.ner.max_chars:
                notes.append(f"ner: only the first {self.settings.ner.max_chars} chars scanned")
        if not self.ner_on:
            notes.append(
                self._ner_note or "ner: off (names, places and organisations are not detected)"
            )
        entities = resolve_overlaps(entities)
        signals, score = injection_findings((h for h in hits if h.rule.kind == "signal"), ctx)
        for clf in self.classifiers:
            score = max(score, clf.score(text, ctx))
        return ScanResult(
            findings=entities + signals,
            classification=self.policy.classify(entities),
            injection_score=score,
            ner=self.ner_on,
            notes=notes,
        )

    def _pattern_hits(self, text: str) -> list[Hit]:
        size, overlap = self.settings.chunk_chars, self.settings.chunk_overlap
        if len(text) <= size + overlap:
            return self.engine.scan(text)
        seen: set[tuple[str, int, int]] = set()
        out: list[Hit] = []
        for base in range(0, len(text), size):
            for h in self.engine.scan(text[base : base + size + overlap]):
                key = (h.rule.name, h.start + base, h.end + base)
                if key in seen:
                    continue
                seen.add(key)
                h.start, h.end = key[1], key[2]
                out.append(h)
        return out

    def injection(self, result: ScanResult, ctx: ScanContext | None = None) -> InjectionVerdict:
        """Whether the injection score is over the flag / block threshold for `ctx`."""
        s = self.settings.injection
        indirect = (ctx or ScanContext()).direction in {"tool_result", "document"}
        flag_at = s.indirect_flag_at if indirect else s.flag_at
        block_at = s.indirect_block_at if indirect else s.block_at
        score = result.injection_score
        return InjectionVerdict(score, score >= flag_at, s.enabled and score >= block_at)

    # --- actions --------------------------------------------------------------------

    def apply(
        self,
        text: str,
        findings: Sequence[Finding],
        actions: Mapping[str, Action] | None = None,
        *,
        vault: PseudonymVault | None = None,
        restorable: bool = True,
    ) -> Applied:
        """Rewrite `text`; `actions` (per entity type) override the configured defaults."""
        return apply_actions(
            text,
            findings,
            self.policy,
            actions=actions,
            vault=vault,
            hash_key=self.hash_key,
            restorable=restorable,
        )

    def redact(
        self,
        text: str,
        context: ScanContext | None = None,
        actions: Mapping[str, Action] | None = None,
        *,
        vault: PseudonymVault | None = None,
    ) -> tuple[ScanResult, Applied]:
        """Scan and apply in one call; an injection score over the block threshold
        blocks the text like a `block` action would."""
        result = self.scan(text, context)
        applied = self.apply(text, result.findings, actions, vault=vault)
        verdict = self.injection(result, context)
        if verdict.blocked or (
            verdict.flagged and self.policy.action_for("PROMPT_INJECTION", actions) is Action.BLOCK
        ):
            applied.blocked.extend(f for f in result.findings if f.type == "PROMPT_INJECTION")
        elif verdict.flagged:
            applied.flagged.extend(f for f in result.findings if f.type == "PROMPT_INJECTION")
        return result, applied

    @staticmethod
    def new_vault() -> PseudonymVault:
        return PseudonymVault()

    @staticmethod
    def restorer(vault: PseudonymVault, *, allowed: bool) -> StreamRestorer:
        return StreamRestorer(vault, allowed=allowed)
