"""Prompt-injection and jailbreak heuristics.

Signal rules (instruction overrides, jailbreak templates, fake role markers, hidden text
and Unicode tricks, encoded payloads) run in the same RE2 pass as every other rule. The
scorer combines the signals into one score in [0, 1]: `1 - prod(1 - weight)` over the
distinct rules that fired, so one weak hint stays low and independent hints add up.
Tool results and retrieved documents (indirect injection) weigh the signals that address
the model more heavily. A classifier can be plugged in through `InjectionClassifier`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import re2

from opsgate.guard import validators as v
from opsgate.guard.engine import Hit
from opsgate.guard.findings import INJECTION, Finding, ScanContext
from opsgate.guard.rules import Rule, Validator

DETECTOR = "injection"
INDIRECT = frozenset({"tool_result", "document"})

_TARGET = (
    r"(?:instructions?|prompts?|rules|directives?|guidelines|guardrails|polic(?:y|ies)|"
    r"constraints|programming|system (?:prompt|message)|safety (?:rules|guidelines))"
)
OVERRIDE = (
    r"(?i)\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect)\b"
    r"[^.\n]{0,30}?\b(?:all|any|the|your|previous|prior|above|earlier|preceding|initial|"
    r"original|system|existing|current)\b[^.\n]{0,25}?\b" + _TARGET + r"\b"
)
_OVERRIDE_I18N = (
    r"(?i)\b(?:ignoriere|vergiss)\b[^.\n]{0,30}\b(?:anweisungen|regeln|vorgaben)\b"
    r"|\bignor(?:e|ez)\b[^.\n]{0,30}\binstructions\b[^.\n]{0,15}\b(?:précédentes|ci-dessus)"
    r"|\b(?:ignora|olvida)\b[^.\n]{0,30}\b(?:instrucciones|reglas|istruzioni|regole)\b"
)


class InjectionClassifier(Protocol):
    """A model that scores text for injection; combined with the heuristics by max()."""

    name: str

    def score(self, text: str, ctx: ScanContext) -> float: ...


def _decoded_injection(value: str, text: str, start: int, end: int) -> bool:
    decoded = v.b64_text(value)
    return decoded is not None and _OVERRIDE_RX.search(decoded) is not None


def _several(value: str, text: str, start: int, end: int) -> bool:
    return len(value) >= 3


_OVERRIDE_RX = re2.compile(OVERRIDE + "|" + _OVERRIDE_I18N)


def _sig(
    name: str, pattern: str, weight: float, *tags: str, validator: Validator | None = None
) -> Rule:
    return Rule(
        name=f"inj_{name}",
        entity=INJECTION,
        pattern=pattern,
        score=weight,
        detector=DETECTOR,
        validator=validator,
        kind="signal",
        weight=weight,
        tags=frozenset(tags),
    )


def injection_rules() -> list[Rule]:
    """The built-in injection signal rules; weights were tuned on tests/data/guard."""
    return [
        _sig("override", OVERRIDE, 0.75, "indirect"),
        _sig("override_i18n", _OVERRIDE_I18N, 0.75, "indirect"),
        _sig("new_instructions",
             r"(?i)\b(?:new|updated|real|actual|true|revised|secret|hidden) "
             r"(?:system )?instructions?\s*(?::|are\b|follow)", 0.45, "indirect"),
        _sig("persona",
             r"(?i)\b(?:you are now|from now on,? you(?: are| will| must)?|"
             r"pretend (?:to be|you are|that you)|roleplay as|you will now act)\b", 0.45),
        _sig("unfiltered_persona",
             r"(?i)\b(?:act|behave|respond|answer) as (?:an? )?(?:unfiltered|uncensored|"
             r"unrestricted|jailbroken|evil|rogue|amoral)\b", 0.45),
        _sig("jailbreak_names",
             r"(?i)\b(?:do anything now|developer mode (?:enabled|output)|"
             r"jailbr(?:eak|oken)|god mode|evil confidant|AIM mode|unfiltered mode|"
             r"opposite mode|DUDE mode)\b", 0.5),
        _sig("dan", r"\b(?:DAN|STAN)\b(?:[^.\n]{0,40})(?i:mode|prompt|jailbreak|anything|now)",
             0.45),
        _sig("no_limits",
             r"(?i)\b(?:without|no|free (?:of|from)|remove (?:all |your )?|ignore (?:all |your )?)"
             r"\s*(?:any\s+)?(?:restrictions|limitations|filters|censorship|content polic(?:y|ies)|"
             r"ethical (?:guidelines|constraints)|safety (?:filters|guidelines|measures)|"
             r"moral (?:constraints|guidelines))\b", 0.4),
        _sig("exfiltrate_prompt",
             r"(?i)\b(?:reveal|show|print|output|repeat|display|leak|dump|tell me|give me|"
             r"spell out|translate)\b[^.\n]{0,30}?\b(?:your|the)\b[^.\n]{0,20}?"
             r"\b(?:system prompt|initial prompt|hidden (?:prompt|instructions)|"
             r"instructions (?:you were given|above)|original instructions|"
             r"developer (?:message|prompt)|"
             r"pre-?prompt|secret instructions)", 0.5),
        _sig("your_instructions",
             r"(?i)\b(?:repeat|reveal|print|show|output|display|leak|dump|include|list)\b"
             r"[^.\n]{0,40}?\byour (?:instructions|rules|prompt|guidelines|directives)\b", 0.35),
        _sig("verbatim_above",
             r"(?i)\b(?:repeat|print|output)\b[^.\n]{0,20}\b(?:everything|all text|the text|"
             r"the words)\b[^.\n]{0,20}\b(?:above|before this|so far)\b", 0.45),
        _sig("role_markers",
             r"(?im)^\s*(?:#{1,4}\s*)?(?:system|assistant)\s*(?:message|prompt)?\s*:"
             r"|<\|(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\|>"
             r"|\[/?INST\]|<<\s*/?SYS\s*>>|</?system>", 0.5, "indirect"),
        _sig("addresses_model",
             r"(?i)\b(?:if you are an? (?:AI|LLM|language model|assistant|chatbot)|"
             r"note to (?:the )?(?:AI|assistant|LLM|model)|attention (?:AI|assistant|LLM)|"
             r"AI (?:assistant|agent)s? (?:reading|processing) this|when you (?:read|summari[sz]e) "
             r"this)\b", 0.4, "indirect"),
        _sig("tool_abuse",
             r"(?i)\b(?:call|invoke|use|run|execute)\b[^.\n]{0,20}\b(?:the )?"
             r"(?:tool|function|shell|command|terminal)\b[^.\n]{0,40}\b(?:delete|rm -rf|drop table|"
             r"transfer|send (?:all|the)|exfiltrate|curl|wget)\b", 0.4, "indirect"),
        _sig("exfil_channel",
             r"(?i)\b(?:send|forward|post|upload|email|exfiltrate|leak)\b[^.\n]{0,40}?"
             r"\b(?:conversation|chat history|credentials|api keys?|passwords?|secrets?|"
             r"system prompt|user data)\b[^.\n]{0,40}?(?:https?://|\b[\w.\-]+@[\w\-]+\.)", 0.5,
             "indirect"),
        _sig("markdown_exfil", r"!\[[^\]\n]{0,100}\]\(https?://[^)\s]{1,300}[?&][^)\s=]{1,40}="
             r"[^)\s]{0,300}\)", 0.35, "indirect"),
        _sig("hidden_html",
             r"(?i)(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\b|"
             r"color\s*:\s*(?:#fff(?:fff)?|white)\b[^>]{0,60}background(?:-color)?\s*:\s*"
             r"(?:#fff(?:fff)?|white)|opacity\s*:\s*0(?:\.0+)?\b)", 0.3, "indirect"),
        _sig("zero_width", r"[\x{200B}-\x{200D}\x{2060}\x{FEFF}]{3,}", 0.35, "indirect",
             validator=_several),
        _sig("bidi_override", r"[\x{202A}-\x{202E}\x{2066}-\x{2069}]", 0.35, "indirect"),
        _sig("unicode_tags", r"[\x{E0000}-\x{E007F}]{2,}", 0.8, "indirect"),
        _sig("spaced_letters",
             r"(?i)\bi[\W_]{1,3}g[\W_]{1,3}n[\W_]{1,3}o[\W_]{1,3}r[\W_]{1,3}e\b", 0.45),
        _sig("encoded_payload", r"[A-Za-z0-9+/]{24,}={0,2}", 0.75, "indirect",
             validator=_decoded_injection),
        _sig("decode_and_follow",
             r"(?i)\b(?:decode|decipher|base64|rot13|reverse)\b[^.\n]{0,40}\b(?:and|then)\b"
             r"[^.\n]{0,20}\b(?:follow|execute|obey|do what|run|comply)", 0.4),
    ]  # fmt: skip


def injection_findings(hits: Iterable[Hit], ctx: ScanContext) -> tuple[list[Finding], float]:
    """Findings for the signal hits and the combined injection score."""
    indirect = ctx.direction in INDIRECT
    best: dict[str, float] = {}
    findings: list[Finding] = []
    for h in hits:
        w = h.rule.weight
        if indirect and "indirect" in h.rule.tags:
            w = min(0.95, w * 1.25)
        best[h.rule.name] = max(best.get(h.rule.name, 0.0), w)
        findings.append(Finding(INJECTION, h.start, h.end, w, DETECTOR, h.value))
    remaining = 1.0
    for w in best.values():
        remaining *= 1.0 - w
    return findings, round(1.0 - remaining, 4)
