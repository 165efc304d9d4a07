"""Quota settings (`gateway.quota`): limits per subject, the counter backend, and the
kill-switch and usage sub-sections.

A subject's effective limits are its override (`keys`, `users`, `teams`, `tenants`) laid
field by field over `defaults.<kind>`: a field the override does not mention is inherited,
a field it sets to `null` is unlimited. A team is limited only when listed in `teams`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opsgate.gateway.killswitch.settings import KillSwitchSettings
from opsgate.gateway.usage.settings import UsageSettings

SubjectKind = Literal["key", "user", "team", "tenant"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("key", "user", "team", "tenant")
Period = Literal["day", "month"]

_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Budget(_Strict):
    """Spend allowed per calendar period (UTC), in USD."""

    amount: float = Field(ge=0, le=10_000_000)
    period: Period = "month"


class Limits(_Strict):
    """Limits for one subject; `None` = unlimited in that dimension."""

    rpm: int | None = Field(None, ge=1, le=100_000_000)
    tpm: int | None = Field(None, ge=1, le=10_000_000_000)
    concurrency: int | None = Field(None, ge=1, le=1_000_000)
    budget: Budget | None = None

    def over(self, base: Limits) -> Limits:
        """These limits laid over `base`: fields set here (even to null) win."""
        data = base.model_dump()
        data.update(self.model_dump(include=self.model_fields_set))
        return Limits.model_validate(data)

    @property
    def empty(self) -> bool:
        return (
            self.rpm is None
            and self.tpm is None
            and self.concurrency is None
            and self.budget is None
        )


class DefaultLimits(_Strict):
    key: Limits = Field(default_factory=Limits)
    user: Limits = Field(default_factory=Limits)
    # Applies to the teams listed in `quota.teams`, for the fields they leave out.
    team: Limits = Field(default_factory=Limits)
    tenant: Limits = Field(default_factory=Limits)


def _check_names(v: dict[str, Limits]) -> dict[str, Limits]:
    for name in v:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a valid subject name (1-256 printable chars)")
    return v


class QuotaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # memory: exact, in this process only (embedded). redis: shared by every replica.
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("opsgate:quota", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")
    # Timeout of one Redis round trip on the request path.
    redis_timeout_seconds: float = Field(0.5, gt=0, le=30)
    # When the backend cannot be reached: closed refuses model requests (503), open admits
    # them unlimited (and logs and counts it).
    on_backend_error: Literal["closed", "open"] = "closed"
    # A concurrency slot or budget reservation whose request never settled (a crashed
    # replica) is freed after this long; keep it above the longest request timeout.
    lease_seconds: float = Field(900.0, ge=0.1, le=86_400)

    defaults: DefaultLimits = Field(default_factory=DefaultLimits)
    keys: dict[str, Limits] = Field(default_factory=dict)
    users: dict[str, Limits] = Field(default_factory=dict)
    teams: dict[str, Limits] = Field(default_factory=dict)
    tenants: dict[str, Limits] = Field(default_factory=dict)

    killswitch: KillSwitchSettings = Field(default_factory=KillSwitchSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)

    @field_validator("keys", "users", "teams", "tenants")
    @classmethod
    def _names(cls, v: dict[str, Limits]) -> dict[str, Limits]:
        return _check_names(v)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return v
