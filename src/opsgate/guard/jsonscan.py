"""Scanning JSON (tool arguments and results): every string value, with depth/size caps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsgate.errors import PayloadTooLarge, ValidationFailed
from opsgate.guard.apply import Applied
from opsgate.guard.core import Guard
from opsgate.guard.findings import Finding, ScanContext, ScanResult
from opsgate.guard.policy import Action, max_level
from opsgate.guard.pseudonym import PseudonymVault
from opsgate.guard.validators import is_placeholder

_PASSWORD_KEYS = ("password", "passwd", "pwd", "passphrase", "secret")
_SECRET_KEYS = (
    "token", "api_key", "apikey", "api-key", "access_key", "private_key", "credential",
    "client_secret", "auth", "session_key", "signing_key",
)  # fmt: skip

Path = tuple[str | int, ...]


@dataclass(slots=True)
class JsonScan:
    """Per string value: its path, scan result and (after `apply_json`) what was done."""

    results: list[tuple[Path, str, ScanResult]] = field(default_factory=list)
    classification: str = "internal"
    injection_score: float = 0.0

    def findings(self) -> list[tuple[Path, Finding]]:
        return [(p, f) for p, _, r in self.results for f in r.findings]


def _key_finding(key: str, value: str) -> Finding | None:
    """`{"password": "hunter2"}`: the key is the context the value lacks on its own."""
    k = key.lower()
    if not value or is_placeholder(value) or len(value) > 4096:
        return None
    if any(w in k for w in _PASSWORD_KEYS):
        return Finding("PASSWORD", 0, len(value), 0.85, "secrets", value)
    if any(w in k for w in _SECRET_KEYS) and len(value) >= 8:
        return Finding("GENERIC_SECRET", 0, len(value), 0.8, "secrets", value)
    return None


def _walk(obj: Any, max_depth: int, max_nodes: int) -> list[tuple[Path, str | None, str]]:
    """(path, parent key, string) for each string value; iterative, so depth is a check,
    not a RecursionError."""
    out: list[tuple[Path, str | None, str]] = []
    stack: list[tuple[Any, Path, str | None]] = [(obj, (), None)]
    nodes = 0
    while stack:
        node, path, key = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise PayloadTooLarge(f"JSON has more than {max_nodes} values; the guard refuses it")
        if len(path) > max_depth:
            raise ValidationFailed(
                f"JSON is nested deeper than {max_depth} levels; the guard refuses it",
                code="json_too_deep",
            )
        if isinstance(node, str):
            out.append((path, key, node))
        elif isinstance(node, Mapping):
            for k, v in node.items():
                stack.append((v, (*path, str(k)), str(k)))
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                stack.append((v, (*path, i), key))
    out.reverse()
    return out


def scan_json(guard: Guard, obj: Any, context: ScanContext | None = None) -> JsonScan:
    """Scan every string value of `obj`; keys named like secrets mark their values."""
    s = guard.settings
    result = JsonScan()
    levels = []
    for path, key, text in _walk(obj, s.max_json_depth, s.max_json_nodes):
        r = guard.scan(text, context)
        if key is not None and not any(f.start == 0 and f.end == len(text) for f in r.findings):
            kf = _key_finding(key, text)
            if kf is not None:
                r.findings = [f for f in r.findings if f.type == "PROMPT_INJECTION"] + [kf]
                r.classification = guard.policy.classify(r.findings)
        if r.findings:
            result.results.append((path, text, r))
        levels.append(r.classification)
        result.injection_score = max(result.injection_score, r.injection_score)
    result.classification = max_level(levels, guard.policy.default_classification)
    return result


def apply_json(
    guard: Guard,
    obj: Any,
    scan: JsonScan,
    actions: Mapping[str, Action] | None = None,
    *,
    vault: PseudonymVault | None = None,
    restorable: bool = True,
) -> tuple[Any, list[tuple[Path, Applied]]]:
    """A copy of `obj` with each scanned string rewritten; the input is not modified."""
    applied: list[tuple[Path, Applied]] = []
    replacements: dict[Path, str] = {}
    for path, text, r in scan.results:
        a = guard.apply(text, r.findings, actions, vault=vault, restorable=restorable)
        applied.append((path, a))
        if a.text != text:
            replacements[path] = a.text
    return _rebuild(obj, (), replacements) if replacements else obj, applied


def _rebuild(node: Any, path: Path, repl: dict[Path, str]) -> Any:
    # Depth was checked by the scan, so this recursion is bounded by max_json_depth.
    if isinstance(node, str):
        return repl.get(path, node)
    if isinstance(node, Mapping):
        return {k: _rebuild(v, (*path, str(k)), repl) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_rebuild(v, (*path, i), repl) for i, v in enumerate(node)]
    return node
