"""What the gateway pipeline needs from other domains, as small protocols.

Each is satisfied by an adapter over the real service (gateway/adapters.py); the pipeline
never imports those services directly, so each step stays testable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from opsgate.identity.principal import Principal

CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")


@dataclass(slots=True)
class AccessDecision:
    allow: bool
    reasons: list[str] = field(default_factory=list)
    # Obligations the decision attaches.
    in_tenant_only: bool = False
    max_tokens: int | None = None
    max_cost: float | None = None
    # Entity type -> guard action ("redact", "pseudonymise", "block", …) for this request.
    redact: dict[str, str] = field(default_factory=dict)
    # The decision as it goes into the audit event (revision, digest, obligations).
    record: dict[str, Any] = field(default_factory=dict)


class ModelAccess(Protocol):
    async def decide(
        self, principal: Principal, model: str, context: dict[str, Any]
    ) -> AccessDecision: ...


class ResponseFilter(Protocol):
    """Applied to model output: restores pseudonyms and scans; stateful across a stream."""

    def text(self, text: str) -> str:
        """A whole response text."""
        ...

    def delta(self, text: str) -> str:
        """One streamed fragment; may hold back a partial token until the next one."""
        ...

    def flush(self) -> str:
        """Whatever a streamed response still holds back, at its end."""
        ...


@dataclass(slots=True)
class PromptVerdict:
    classification: str = "internal"
    blocked: bool = False
    reason: str = ""
    # Finding kinds (e.g. "email", "aws_key"), never the matched values.
    findings: list[str] = field(default_factory=list)
    # Messages to send upstream instead of the client's (redacted/pseudonymised); None = as is.
    messages: list[dict[str, Any]] | None = None
    response_filter: ResponseFilter | None = None


class PromptGuard(Protocol):
    async def inspect(
        self,
        principal: Principal,
        model: str,
        messages: list[dict[str, Any]],
        actions: dict[str, str] | None = None,
    ) -> PromptVerdict:
        """`actions` are the policy's per-request overrides of the guard's actions."""
        ...


class QuotaGate(Protocol):
    async def admit(
        self, principal: Principal, model: str, est_tokens: int, est_cost: float
    ) -> Any:
        """A reservation; raises RateLimited (with retry_after) when over a limit."""
        ...

    async def settle(
        self, reservation: Any, tokens_in: int, tokens_out: int, cost: float
    ) -> None: ...

    async def release(self, reservation: Any) -> None: ...


class KillSwitchGate(Protocol):
    async def check(self, model: str, key_id: str | None, tenant: str) -> None:
        """Raise (Forbidden/Unavailable) when the model or the caller's key is killed."""
        ...

    def is_killed(self, deployment: str) -> bool: ...


@dataclass(slots=True)
class UsageEvent:
    tenant: str
    principal_id: str
    key_id: str | None
    groups: frozenset[str]
    model: str
    deployment: str | None
    route: str
    provider: str | None
    operation: str
    input_tokens: int
    output_tokens: int
    cost: float
    status: str
    latency_ms: float
    request_id: str | None
    trace_id: str | None
    stream: bool


class UsageSink(Protocol):
    def record(self, event: UsageEvent) -> None:
        """Non-blocking."""
        ...
