"""Tenant custom rules: regexes (with optional validator and context words) and dictionaries.

Rules come from YAML files and from the API; both use `CustomRule`. Every pattern must
compile under RE2 (so it runs in linear time) and the counts and sizes are bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsgate.errors import ConfigError
from opsgate.guard import validators as v
from opsgate.guard.engine import RuleError, compile_re2
from opsgate.guard.policy import Action
from opsgate.guard.rules import Rule, Validator
from opsgate.guard.settings import ActionName, GuardSettings, Level

NAME = r"^[a-z][a-z0-9_\-]{0,62}$"
ENTITY = r"^[A-Z][A-Z0-9_]{0,40}$"

VALIDATORS: dict[str, Callable[[str], bool]] = {
    "luhn": lambda s: v.luhn_ok(v.digits_of(s)),
    "credit_card": v.credit_card_ok,
    "iban": v.iban_ok,
    "us_ssn": v.us_ssn_ok,
    "es_nif": v.es_nif_ok,
    "it_fiscal_code": v.it_fiscal_code_ok,
    "nl_bsn": v.nl_bsn_ok,
    "de_tax_id": v.de_tax_id_ok,
    "aba": v.aba_ok,
    "ipv4": v.ipv4_ok,
    "high_entropy": lambda s: v.looks_random(s, 3.0),
}
ValidatorName = Literal[
    "luhn", "credit_card", "iban", "us_ssn", "es_nif", "it_fiscal_code", "nl_bsn",
    "de_tax_id", "aba", "ipv4", "high_entropy",
]  # fmt: skip


class CustomRule(BaseModel):
    """One tenant rule. `entity` becomes the finding type `CUSTOM_<ENTITY>`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    kind: Literal["regex", "dictionary"] = "regex"
    entity: str = Field(pattern=ENTITY)
    pattern: str | None = Field(None, min_length=1)
    terms: list[str] | None = None
    case_sensitive: bool = False
    validator: ValidatorName | None = None
    context: list[str] = Field(default_factory=list, max_length=50)
    context_required: bool = False
    score: float = Field(0.8, ge=0, le=1)
    action: ActionName = "redact"
    classification: Level = "confidential"

    @property
    def entity_type(self) -> str:
        return f"CUSTOM_{self.entity}"


class RuleSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[CustomRule] = Field(default_factory=list)


def _validator(name: str | None) -> Validator | None:
    if name is None:
        return None
    fn = VALIDATORS[name]

    def check(value: str, text: str, start: int, end: int) -> bool:
        return bool(fn(value))

    return check


def _dictionary_pattern(terms: Sequence[str], case_sensitive: bool) -> str:
    flags = "" if case_sensitive else "(?i)"
    plain = sorted({t for t in terms if t[0].isascii() and t[0].isalnum()
                    and t[-1].isascii() and t[-1].isalnum()}, key=len, reverse=True)  # fmt: skip
    other = sorted(set(terms) - set(plain), key=len, reverse=True)
    parts = []
    if plain:
        parts.append(rf"\b(?P<v>{'|'.join(re2.escape(t) for t in plain)})\b")
    if other:
        alts = "|".join(re2.escape(t) for t in other)
        parts.append(rf"(?:^|[^\pL\pN_])(?P<v2>{alts})(?:[^\pL\pN_]|$)")
    return flags + "|".join(parts)


def check_rules(rules: Sequence[CustomRule], s: GuardSettings) -> list[dict[str, Any]]:
    """Problems with a rule set, one dict per problem (empty: the set is acceptable)."""
    problems: list[dict[str, Any]] = []
    if len(rules) > s.max_custom_rules:
        problems.append({"field": "rules", "message": f"at most {s.max_custom_rules} rules"})
    seen: set[str] = set()
    terms_total = 0
    for i, r in enumerate(rules):
        where = f"rules.{i}"
        if r.name in seen:
            problems.append({"field": f"{where}.name", "message": f"duplicate name {r.name!r}"})
        seen.add(r.name)
        if r.kind == "regex":
            problems.extend(_check_regex(r, where, s))
        else:
            terms = r.terms or []
            terms_total += len(terms)
            if not terms or r.pattern is not None:
                problems.append({"field": where, "message": "a dictionary needs terms, no pattern"})
            bad = [t for t in terms if not t.strip() or len(t) > 200]
            if bad:
                problems.append({"field": f"{where}.terms", "message": "terms are 1-200 chars"})
    if terms_total > s.max_dictionary_terms:
        problems.append(
            {"field": "rules", "message": f"at most {s.max_dictionary_terms} dictionary terms"}
        )
    return problems


def _check_regex(r: CustomRule, where: str, s: GuardSettings) -> list[dict[str, Any]]:
    if r.pattern is None or r.terms is not None:
        return [{"field": where, "message": "a regex rule needs a pattern and no terms"}]
    if len(r.pattern) > s.max_pattern_chars:
        return [{"field": f"{where}.pattern", "message": f"at most {s.max_pattern_chars} chars"}]
    try:
        rx = compile_re2(r.pattern, name=r.name)
    except RuleError as exc:
        pos = "" if exc.position is None else f" at position {exc.position}"
        detail = str(exc).split(": ", 1)[1]
        return [{"field": f"{where}.pattern", "message": f"not valid RE2{pos}: {detail}",
                 "position": exc.position}]  # fmt: skip
    if rx.fullmatch("") is not None:
        return [{"field": f"{where}.pattern", "message": "pattern matches the empty string"}]
    return []


def to_rules(custom: Iterable[CustomRule], tenant: str) -> list[Rule]:
    """Engine rules for a checked custom rule set."""
    out: list[Rule] = []
    for r in custom:
        if r.kind == "dictionary":
            pattern = _dictionary_pattern(r.terms or [], r.case_sensitive)
        else:
            raw = r.pattern or ""
            pattern = raw if r.case_sensitive else f"(?i){raw}"
        out.append(
            Rule(
                name=f"custom_{r.name}",
                entity=r.entity_type,
                pattern=pattern,
                score=r.score,
                detector=f"custom:{tenant}",
                validator=_validator(r.validator),
                context=tuple(r.context),
                context_required=r.context_required and bool(r.context),
            )
        )
    return out


def policy_entries(
    custom: Iterable[CustomRule],
) -> tuple[dict[str, Action], dict[str, Level]]:
    rules = list(custom)
    return (
        {r.entity_type: Action(r.action) for r in rules},
        {r.entity_type: r.classification for r in rules},
    )


def load_yaml_rules(rules_dir: Path, tenant: str, s: GuardSettings) -> list[CustomRule]:
    """Rules from `<rules_dir>/global.yaml` and `<rules_dir>/<tenant>.yaml`, if present."""
    from opsgate.settings import read_yaml

    out: list[CustomRule] = []
    for stem in ("global", tenant):
        path = rules_dir / f"{stem}.yaml"
        if not path.is_file():
            continue
        data = read_yaml(path)
        try:
            parsed = RuleSetIn.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(
                [(f"{path}: {'.'.join(str(p) for p in e['loc'])}", e["msg"]) for e in exc.errors()]
            ) from None
        problems = check_rules(parsed.rules, s)
        if problems:
            raise ConfigError([(f"{path}: {p['field']}", p["message"]) for p in problems])
        out.extend(parsed.rules)
    return out
