"""Tool-poisoning checks on what an upstream MCP server says about its tools.

A tool's description and schema text reach the model verbatim, so an upstream can hide
instructions there ("tool poisoning"). Every string of a tool definition is checked for hidden
characters; the prose (descriptions, titles) for instructions aimed at the model, secrecy
towards the user, secret-file references, cross-tool references and `<IMPORTANT>`-style
blocks. The guard's injection detector scores the same prose when a guard is running. A
finding does not prove malice: it holds the tool for an admin's review.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from opsgate.guard.findings import ScanContext
from opsgate.guard.service import GuardService

# (reason, pattern) over the prose of a tool definition.
_CHECKS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    for reason, pattern in (
        ("instruction block tag", r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|"
         r"admin|critical|note_to_ai)\b[^>]{0,40}>"),
        ("asks to ignore instructions", r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}?"
         r"\b(?:previous|prior|above|earlier|other|all|any|system)\b[^.\n]{0,25}?"
         r"\b(?:instructions?|prompts?|rules|messages?|tools?)\b"),
        ("secrecy towards the user", r"\b(?:do not|don't|never|must not)\s+(?:tell|inform|mention|"
         r"reveal|show|notify|alert|disclose)\b[^.\n]{0,40}?\buser\b"
         r"|\bwithout\s+(?:telling|informing|notifying|alerting|asking)\b[^.\n]{0,20}?\buser\b"
         r"|\buser\s+(?:must|should)\s+not\s+(?:know|see|be told)\b"),
        ("references secret files", r"~/\.ssh|\bid_(?:rsa|ed25519|ecdsa)\b|/etc/(?:passwd|shadow)"
         r"|\.aws/credentials|\bmcp\.json\b|\.env\b|\.netrc\b|\.kube/config"),
        ("asks for credentials", r"\b(?:read|send|include|pass|forward|attach|copy|upload|"
         r"exfiltrate|leak|append|add)\b[^.\n]{0,60}?\b(?:api[ _-]?keys?|private keys?|passwords?|"
         r"secrets?|credentials?|access tokens?|bearer tokens?|session tokens?)\b"),
        ("references other tools", r"\b(?:other|another|every|all|any)\s+(?:\w+\s+)?(?:tools?|"
         r"servers?|mcp servers?)\b|\bwhen(?:ever)?\b[^.\n]{0,40}\btool\b[^.\n]{0,40}\b(?:is|gets)"
         r"\s+(?:called|used|invoked)\b"),
        ("addresses the model", r"\b(?:before using this tool|you must (?:first )?"
         r"(?:call|read|send|include)|as an? (?:AI|assistant|LLM)\b"
         r"|note to (?:the )?(?:AI|assistant|model))"),
    )
)  # fmt: skip
_ALLOWED_CONTROL = {"\n", "\r", "\t"}
_PROSE_KEYS = {"description", "title"}


def _strings(obj: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) for every string in a JSON value: keys and values alike."""
    if isinstance(obj, str):
        yield key, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield "key", str(k)
            yield from _strings(v, str(k))
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v, key)


def _hidden(text: str) -> str | None:
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" or (cat == "Cc" and ch not in _ALLOWED_CONTROL) or cat in ("Co", "Cn"):
            return f"hidden character U+{ord(ch):04X} ({unicodedata.name(ch, cat)})"
    return None


def tool_prose(definition: dict[str, Any]) -> str:
    """The text of a tool definition a model reads: description, title, schema prose."""
    parts = [str(definition.get("description") or ""), str(definition.get("title") or "")]
    for schema in ("input_schema", "output_schema"):
        parts += [s for k, s in _strings(definition.get(schema) or {}) if k in _PROSE_KEYS]
    return "\n".join(p for p in parts if p)


def explicit_findings(definition: dict[str, Any]) -> list[str]:
    """Reasons a tool definition looks poisoned (empty when nothing was found)."""
    reasons: list[str] = []
    for _, s in _strings(definition):
        hidden = _hidden(s)
        if hidden is not None:
            reasons.append(hidden)
            break
    prose = tool_prose(definition)
    reasons += [reason for reason, rx in _CHECKS if rx.search(prose)]
    return reasons


async def poisoning_findings(
    definition: dict[str, Any], guard: GuardService | None, tenant: str
) -> list[str]:
    """Explicit checks plus the guard's injection score (scored as an indirect source)."""
    reasons = explicit_findings(definition)
    if guard is not None and guard.settings.injection.enabled:
        scan = await guard.scan(tenant, tool_prose(definition), ScanContext(direction="document"))
        if scan.injection_score >= guard.settings.injection.indirect_flag_at:
            reasons.append(f"guard injection score {scan.injection_score:.2f}")
    return reasons
