from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ActionName = Literal["allow", "mask", "redact", "pseudonymise", "hash", "block", "flag"]
Level = Literal["public", "internal", "confidential", "restricted"]
NerEntity = Literal["PERSON", "LOCATION", "ORGANIZATION"]


class NerSettings(BaseModel):
    """Names, places and organisations through Presidio + spaCy (`opsgate[ner]`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # An installed spaCy model package (never downloaded at run time), e.g. en_core_web_lg.
    model: str = "en_core_web_lg"
    language: str = "en"
    entities: list[NerEntity] = Field(
        default_factory=lambda: list[NerEntity](["PERSON", "LOCATION", "ORGANIZATION"])
    )
    min_score: float = Field(0.5, ge=0, le=1)
    # NER is the slow detector: texts longer than this are NER-scanned only up to here
    # (the pattern detectors still cover the whole text); the result says so.
    max_chars: int = Field(200_000, ge=1_000)
    # true: starting OpsGate fails when the model cannot load; false: NER is reported off.
    required: bool = False


class InjectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Scores at or above `flag_at` raise a detection event; at or above `block_at` the
    # request is refused. Indirect sources (tool results, documents) use their own pair.
    flag_at: float = Field(0.5, ge=0, le=1)
    block_at: float = Field(0.9, ge=0, le=1)
    indirect_flag_at: float = Field(0.4, ge=0, le=1)
    indirect_block_at: float = Field(0.85, ge=0, le=1)


class GuardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Regions used to read phone numbers written without a +country prefix.
    phone_regions: list[str] = Field(
        default_factory=lambda: ["US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "AU", "IE"]
    )
    # Entity type -> action; merged over the built-in defaults (see docs/guard.md).
    actions: dict[str, ActionName] = Field(default_factory=dict)
    # Entity type -> the data classification a finding of that type implies.
    classification: dict[str, Level] = Field(default_factory=dict)
    # Classification of a request with no findings.
    default_classification: Level = "internal"
    min_score: float = Field(0.5, ge=0, le=1)
    ner: NerSettings = Field(default_factory=NerSettings)
    injection: InjectionSettings = Field(default_factory=InjectionSettings)
    # Limits: longer texts / deeper or larger JSON are refused with a clear error.
    max_text_chars: int = Field(10 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(64, ge=2, le=256)
    max_json_nodes: int = Field(200_000, ge=10)
    # Texts longer than this are scanned in chunks that overlap by `chunk_overlap`, so an
    # entity across a chunk border is still found.
    chunk_chars: int = Field(1024 * 1024, ge=16 * 1024)
    chunk_overlap: int = Field(8192, ge=256)
    # Tenant custom rules: YAML files `<rules_dir>/<tenant>.yaml` (and `*.yaml` for all).
    rules_dir: Path | None = None
    max_custom_rules: int = Field(200, ge=0, le=10_000)
    max_dictionary_terms: int = Field(20_000, ge=0, le=1_000_000)
    max_pattern_chars: int = Field(2000, ge=16, le=100_000)
    # How long a tenant's compiled rule set is reused before the database is asked again
    # (changes through the API take effect at once on the replica that made them and are
    # announced on the bus to the others).
    rules_cache_seconds: float = Field(10.0, ge=0, le=3600)
    # Texts (and JSON documents, by their encoded size) longer than this are scanned in a
    # worker thread, off the event loop; shorter ones inline (a thread hop costs more).
    thread_above_chars: int = Field(64 * 1024, ge=1024)
