"""Wire types of the guard API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsgate.guard.custom import CustomRule
from opsgate.guard.settings import ActionName


class ScanContextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: Literal["prompt", "response", "tool_args", "tool_result", "document"] = "prompt"


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    context: ScanContextIn = Field(default_factory=ScanContextIn)


class RedactIn(ScanIn):
    # Entity type -> action, over the configured defaults (e.g. {"EMAIL": "mask"}).
    actions: dict[str, ActionName] = Field(default_factory=dict, max_length=200)


class FindingOut(BaseModel):
    type: str
    start: int
    end: int
    score: float
    detector: str


class ScanOut(BaseModel):
    findings: list[FindingOut]
    classification: str
    injection_score: float
    ner: bool
    notes: list[str]


class RedactOut(BaseModel):
    text: str
    findings: list[FindingOut]
    classification: str
    injection_score: float
    flagged: list[str]


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[CustomRule]


class RulesOut(BaseModel):
    rules: list[dict[str, Any]]
