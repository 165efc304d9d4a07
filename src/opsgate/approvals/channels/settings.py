"""Configuration of the approval notification channels (Slack, Teams, generic webhooks).

Every secret (bot token, signing secret, Teams webhook URL, webhook HMAC key) is a vault
reference (`secret://name`) resolved in the channel's tenant at use, never a literal.
"""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LOOPBACK_HOSTS = frozenset({"localhost"})


def _is_ref(value: str) -> bool:
    return value.startswith("secret://") and len(value) > len("secret://")


def _ref(value: str) -> str:
    if not _is_ref(value):
        raise ValueError("must be a vault reference like secret://name, never the secret itself")
    return value


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_loopback_http: bool) -> str:
    """https only; plain http only to a loopback host when explicitly allowed (tests)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValueError("URLs must not carry credentials")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_loopback_http and is_loopback(parts.hostname):
        return url
    raise ValueError("URL must be https (http only to 127.0.0.1 with allow_loopback_http)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlackUser(_Strict):
    # The OpsGate principal id the Slack user decides as (e.g. the SSO subject "ana").
    principal: str = Field(min_length=1, max_length=300)
    # Groups of that principal, matched against the request's approver groups by policy.
    groups: list[str] = Field(default_factory=list)
    # Roles of that principal (policy may require e.g. "approver").
    roles: list[str] = Field(default_factory=list)
    # Display name shown in the updated Slack message and the audit trail.
    name: str = ""


class SlackChannelSettings(_Strict):
    # Off by default; on needs bot_token, signing_secret and channel.
    enabled: bool = False
    # Approvals of this tenant are posted; secrets are resolved and users decide in it.
    tenant: str = "default"
    # Vault reference of the bot token (xoxb-...); the app needs the chat:write scope.
    bot_token: str = ""
    # Vault reference of the app's signing secret, to verify interaction requests.
    signing_secret: str = ""
    # Channel id (C0123...) the requests are posted to.
    channel: str = ""
    # Slack Web API base URL; change only to point at a test double.
    base_url: str = "https://slack.com/api/"
    # If set, interactions from any other Slack workspace (team id T...) are refused.
    team_id: str = ""
    # Only requests in these zones are posted; empty means all zones.
    zones: list[str] = Field(default_factory=list)
    # Slack user id (U0123...) -> the OpsGate principal it decides as. Unmapped users are
    # refused: a Slack account alone never grants the right to approve.
    users: dict[str, SlackUser] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> SlackChannelSettings:
        if self.enabled:
            _ref(self.bot_token)
            _ref(self.signing_secret)
            if not self.channel:
                raise ValueError("slack.channel: a channel id is required when enabled")
        return self


class TeamsChannelSettings(_Strict):
    # A name for logs and the audit trail (e.g. "ops-teams").
    name: str = Field(min_length=1, max_length=64)
    # Approvals of this tenant are posted; the URL is resolved from this tenant's vault.
    tenant: str = "default"
    # Vault reference of the incoming webhook URL (the URL itself is the credential).
    webhook_url: str
    # Only requests in these zones are posted; empty means all zones.
    zones: list[str] = Field(default_factory=list)

    @field_validator("webhook_url")
    @classmethod
    def _is_ref(cls, v: str) -> str:
        return _ref(v)


class WebhookChannelSettings(_Strict):
    # A name for logs and the audit trail (e.g. "pagerduty-bridge").
    name: str = Field(min_length=1, max_length=64)
    # Approvals of this tenant are sent; the secret is resolved from this tenant's vault.
    tenant: str = "default"
    # Receiver URL (https; not a secret). Only configured URLs are ever called.
    url: str
    # Vault reference of the HMAC-SHA256 key for the X-OpsGate-Signature header.
    secret: str
    # Only requests in these zones are sent; empty means all zones.
    zones: list[str] = Field(default_factory=list)
    # Also send "approval.settled" events (denied/expired/executed/failed/cancelled).
    send_settled: bool = True

    @field_validator("secret")
    @classmethod
    def _is_ref(cls, v: str) -> str:
        return _ref(v)


class ChannelsSettings(_Strict):
    """`approvals.channels` (or wherever the lead mounts it): where approval requests go."""

    # Slack interactive messages (Approve / Deny buttons), one Slack app.
    slack: SlackChannelSettings = Field(default_factory=SlackChannelSettings)
    # Microsoft Teams incoming webhooks: a card with a link back (decisions stay in OpsGate).
    teams: list[TeamsChannelSettings] = Field(default_factory=list)
    # Generic signed JSON webhooks.
    webhooks: list[WebhookChannelSettings] = Field(default_factory=list)
    # Per-attempt timeout of one delivery.
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    # Attempts per delivery (first try included) before it is given up and audited.
    attempts: int = Field(4, ge=1, le=10)
    # First retry delay; doubles each attempt (with jitter), capped at 30 s.
    backoff_seconds: float = Field(0.5, ge=0, le=30)
    # Allow plain http to 127.0.0.1/localhost (tests and local fakes only; never production).
    allow_loopback_http: bool = False

    @model_validator(mode="after")
    def _urls(self) -> ChannelsSettings:
        urls = [(f"webhooks[{i}].url", h.url) for i, h in enumerate(self.webhooks)]
        if self.slack.enabled:
            urls.insert(0, ("slack.base_url", self.slack.base_url))
        for path, url in urls:
            try:
                check_url(url, allow_loopback_http=self.allow_loopback_http)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        names = [c.name for c in self.teams] + [c.name for c in self.webhooks]
        if len(names) != len(set(names)):
            raise ValueError("teams/webhooks: channel names must be unique")
        return self

    @property
    def any_enabled(self) -> bool:
        return self.slack.enabled or bool(self.teams) or bool(self.webhooks)
