"""What components hand to the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["allowed", "denied", "error", "success", "failure", "pending", "info"]


@dataclass(slots=True)
class AuditEventIn:
    """One event to append. `payload` must be JSON-serialisable and never hold secrets."""

    tenant: str
    actor: str  # principal id, or "system"
    action: str  # e.g. "auth.login_failed", "model.invoke", "tool.call", "secret.put"
    resource: str  # e.g. "model:ops-default", "tool:k8s.scale", "secret:openai"
    outcome: Outcome
    reason: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None
