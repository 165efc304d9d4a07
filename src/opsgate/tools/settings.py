from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ToolsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Outbound checks (host connector) may reach these despite being private/loopback:
    # CIDRs ("10.0.0.0/8") or host names. Everything else private, loopback, link-local,
    # multicast or reserved is refused.
    allow_targets: list[str] = Field(default_factory=list)
    # Tool results larger than this are truncated (and marked truncated).
    result_max_bytes: int = Field(256 * 1024, ge=1024)
    # Approval requests created by L2/L3 calls expire after this long (expiry = denied).
    approval_ttl_seconds: float = Field(24 * 3600, gt=0)
    # After this long, the zone's escalation groups may decide too (0 = no escalation).
    approval_escalate_seconds: float = Field(0, ge=0)
    escalation_groups: list[str] = Field(default_factory=list)
