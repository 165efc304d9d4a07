from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from opsgate.tools.connectors.aws_settings import AwsSettings
from opsgate.tools.connectors.kubernetes_settings import KubernetesSettings
from opsgate.tools.federation_settings import UpstreamSettings


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
    # Connector calls: retries (reads and idempotent tools only) and per-target breakers.
    retry_attempts: int = Field(3, ge=1, le=10)
    retry_backoff_seconds: float = Field(0.2, ge=0, le=30)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_open_seconds: float = Field(30, gt=0, le=3600)
    # An MCP call that needs approval is held this long (progress notifications every
    # `progress_interval_seconds`) before it returns "pending approval" with the id.
    approval_hold_seconds: float = Field(45, ge=0, le=3600)
    progress_interval_seconds: float = Field(5, gt=0, le=60)
    # Held calls re-check the database this often in case a bus event was missed.
    approval_poll_seconds: float = Field(5, gt=0, le=300)
    # MCP clients that declare the tasks extension get a task for a held call at once (no
    # hold); this is the polling interval OpsGate suggests to them (`pollIntervalMs`).
    task_poll_interval_seconds: float = Field(2, ge=0.1, le=300)
    # Agent loop caps (agents only; 0 turns a cap off): tool calls per minute, and how often
    # the same tool with the same arguments may be called within a minute.
    agent_calls_per_minute: int = Field(120, ge=0)
    agent_repeat_limit: int = Field(5, ge=0)
    # Connectors (each off until configured; see docs/tools-*.md).
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    # Upstream MCP servers federated into the catalog (docs/tools-federation.md).
    federation: UpstreamSettings = Field(default_factory=UpstreamSettings)
