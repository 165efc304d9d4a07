"""What detectors report: findings, the scan context and the entity catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["prompt", "response", "tool_args", "tool_result", "document", "audit"]
DIRECTIONS: tuple[str, ...] = (
    "prompt",
    "response",
    "tool_args",
    "tool_result",
    "document",
    "audit",
)
Classification = Literal["public", "internal", "confidential", "restricted"]
CLASSIFICATIONS: tuple[Classification, ...] = ("public", "internal", "confidential", "restricted")

# Entity types, grouped by what they are. Custom tenant rules add `CUSTOM_<NAME>` types.
PII_STRUCTURED = (
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "EMAIL",
    "PHONE",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "PASSPORT",
    "DRIVER_LICENSE",
    "ES_NIF",
    "IT_FISCAL_CODE",
    "NL_BSN",
    "DE_TAX_ID",
    "US_ABA_ROUTING",
)
PII_NER = ("PERSON", "LOCATION", "ORGANIZATION")
SECRETS = (
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_SAS_TOKEN",
    "GCP_SERVICE_ACCOUNT",
    "GCP_API_KEY",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "SLACK_TOKEN",
    "SLACK_WEBHOOK",
    "STRIPE_KEY",
    "OPENAI_KEY",
    "ANTHROPIC_KEY",
    "JWT",
    "PRIVATE_KEY",
    "DB_CONNECTION_STRING",
    "PASSWORD",
    "GENERIC_SECRET",
)
INJECTION = "PROMPT_INJECTION"
ENTITY_TYPES: tuple[str, ...] = (*PII_STRUCTURED, *PII_NER, *SECRETS, INJECTION)


def category(entity: str) -> str:
    """ "pii", "secret", "injection" or "custom" for an entity type."""
    if entity in SECRETS:
        return "secret"
    if entity == INJECTION:
        return "injection"
    if entity.startswith("CUSTOM_"):
        return "custom"
    return "pii"


@dataclass(slots=True)
class Finding:
    """One detected entity. `value` stays in memory: `public()` never includes it."""

    type: str
    start: int
    end: int
    score: float
    detector: str
    value: str = field(default="", repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
            "detector": self.detector,
        }


@dataclass(slots=True)
class ScanContext:
    """Where the text comes from; detectors and policy may treat directions differently."""

    direction: Direction = "prompt"
    tenant: str | None = None
    language: str = "en"


@dataclass(slots=True)
class ScanResult:
    """Findings of one scan plus what they imply."""

    findings: list[Finding]
    classification: Classification
    injection_score: float
    ner: bool
    notes: list[str] = field(default_factory=list)

    def types(self) -> list[str]:
        return sorted({f.type for f in self.findings})
