"""What to do with each entity type, and what data classification it implies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from opsgate.guard.findings import (
    CLASSIFICATIONS,
    INJECTION,
    PII_NER,
    PII_STRUCTURED,
    SECRETS,
    Classification,
    Finding,
)
from opsgate.guard.settings import GuardSettings


class Action(StrEnum):
    ALLOW = "allow"
    MASK = "mask"
    REDACT = "redact"
    PSEUDONYMISE = "pseudonymise"
    HASH = "hash"
    BLOCK = "block"
    FLAG = "flag"


_CONFIDENTIAL_IDS = (
    "CREDIT_CARD", "IBAN", "US_SSN", "DATE_OF_BIRTH", "PASSPORT", "DRIVER_LICENSE", "ES_NIF",
    "IT_FISCAL_CODE", "NL_BSN", "DE_TAX_ID", "US_ABA_ROUTING",
)  # fmt: skip

DEFAULT_ACTIONS: dict[str, Action] = {
    **{t: Action.REDACT for t in SECRETS},
    **{t: Action.PSEUDONYMISE for t in PII_STRUCTURED},
    "PERSON": Action.PSEUDONYMISE,
    "LOCATION": Action.FLAG,
    "ORGANIZATION": Action.FLAG,
    INJECTION: Action.FLAG,
}

DEFAULT_CLASSIFICATION: dict[str, Classification] = {
    **{t: "restricted" for t in SECRETS},
    **{t: "confidential" for t in _CONFIDENTIAL_IDS},
    "EMAIL": "internal",
    "PHONE": "internal",
    "IP_ADDRESS": "internal",
    **{t: "internal" for t in PII_NER},
    INJECTION: "internal",
}


def max_level(levels: Iterable[Classification], floor: Classification) -> Classification:
    best = CLASSIFICATIONS.index(floor)
    for level in levels:
        best = max(best, CLASSIFICATIONS.index(level))
    return CLASSIFICATIONS[best]


@dataclass(slots=True)
class GuardPolicy:
    """Entity type -> action and -> classification; custom rules add their own entries."""

    actions: dict[str, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    classification: dict[str, Classification] = field(
        default_factory=lambda: dict(DEFAULT_CLASSIFICATION)
    )
    default_classification: Classification = "internal"
    fallback_action: Action = Action.REDACT

    @classmethod
    def from_settings(cls, s: GuardSettings) -> GuardPolicy:
        policy = cls(default_classification=s.default_classification)
        policy.actions.update({k: Action(v) for k, v in s.actions.items()})
        policy.classification.update(s.classification)
        return policy

    def with_entries(
        self, actions: Mapping[str, Action], classification: Mapping[str, Classification]
    ) -> GuardPolicy:
        return GuardPolicy(
            actions={**self.actions, **actions},
            classification={**self.classification, **classification},
            default_classification=self.default_classification,
            fallback_action=self.fallback_action,
        )

    def action_for(self, entity: str, overrides: Mapping[str, Action] | None = None) -> Action:
        if overrides and entity in overrides:
            return Action(overrides[entity])
        return self.actions.get(entity, self.fallback_action)

    def classify(self, findings: Iterable[Finding]) -> Classification:
        """The request's classification: the highest level any finding implies."""
        return max_level(
            (self.classification.get(f.type, "confidential") for f in findings),
            self.default_classification,
        )
