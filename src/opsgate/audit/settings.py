from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AuditSinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["jsonl", "webhook"]
    # jsonl: a file path, or "-" for stdout. webhook: an https URL from admin config.
    target: str
    # webhook: a secret reference (secret://name) for the HMAC signature header.
    secret: str = ""
    timeout_seconds: float = Field(5.0, gt=0, le=60)


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint_every: int = Field(1000, ge=1)
    checkpoint_seconds: float = Field(60.0, gt=0)
    batch_max: int = Field(1000, ge=1)
    # How long the writer waits to gather more events into one commit.
    batch_linger_ms: float = Field(2.0, ge=0, le=1000)
    queue_max: int = Field(100_000, ge=100)
    sinks: list[AuditSinkSettings] = Field(default_factory=list)
