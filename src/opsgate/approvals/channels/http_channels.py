"""Channels that are one HTTPS POST: Microsoft Teams incoming webhooks and signed webhooks."""

from __future__ import annotations

import httpx
import orjson

from opsgate.approvals.channels.base import DeliveryError
from opsgate.approvals.channels.message import ApprovalMessage
from opsgate.approvals.channels.render import teams_card, webhook_body
from opsgate.approvals.channels.settings import (
    TeamsChannelSettings,
    WebhookChannelSettings,
    check_url,
)
from opsgate.approvals.channels.signing import HEADER, sign
from opsgate.vault.service import VaultService


async def post_json(
    transport: httpx.AsyncBaseTransport,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
) -> None:
    """POST through the transport, not a Client: httpx.AsyncClient logs every request URL at
    INFO, and a Teams webhook URL is a credential. No proxies, no redirects followed."""
    request = httpx.Request(
        "POST",
        url,
        content=body,
        headers={"content-type": "application/json", "user-agent": "OpsGate", **headers},
        extensions={"timeout": httpx.Timeout(timeout_seconds).as_dict()},
    )
    try:
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        # The exception text can quote the URL: keep only its type.
        raise DeliveryError(type(exc).__name__) from None
    if response.status_code >= 300:
        retry = response.status_code >= 500 or response.status_code in (408, 429)
        raise DeliveryError("receiver refused", status=response.status_code, retry=retry)


class TeamsChannel:
    """An Adaptive Card with the details and an "Open in OpsGate" link; no decisions."""

    def __init__(
        self, cfg: TeamsChannelSettings, vault: VaultService,
        transport: httpx.AsyncBaseTransport, *, timeout: float, allow_loopback_http: bool,
    ) -> None:  # fmt: skip
        self.name, self.tenant, self.zones = f"teams:{cfg.name}", cfg.tenant, list(cfg.zones)
        self.cfg, self.vault, self.transport, self.timeout = cfg, vault, transport, timeout
        self.allow_loopback_http = allow_loopback_http

    async def requested(self, message: ApprovalMessage) -> None:
        url = (await self.vault.resolve(self.tenant, self.cfg.webhook_url)).reveal()
        try:
            check_url(url, allow_loopback_http=self.allow_loopback_http)
        except ValueError as exc:
            raise DeliveryError(
                f"webhook URL in the vault is not allowed: {exc}", retry=False
            ) from None
        await post_json(self.transport, url, orjson.dumps(teams_card(message)), {}, self.timeout)

    async def settled(self, message: ApprovalMessage) -> None:
        # Incoming webhooks cannot edit a posted card; the link shows the live state.
        return None


class WebhookChannel:
    """POSTs `{"event": ..., "approval": {...}}` signed with HMAC-SHA256."""

    def __init__(
        self,
        cfg: WebhookChannelSettings,
        vault: VaultService,
        transport: httpx.AsyncBaseTransport,
        *,
        timeout: float,
    ) -> None:
        self.name, self.tenant, self.zones = f"webhook:{cfg.name}", cfg.tenant, list(cfg.zones)
        self.cfg, self.vault, self.transport, self.timeout = cfg, vault, transport, timeout

    async def _send(self, event: str, message: ApprovalMessage) -> None:
        secret = (await self.vault.resolve(self.tenant, self.cfg.secret)).reveal().encode()
        body = orjson.dumps(webhook_body(event, message))
        headers = {HEADER: sign(secret, body), "X-OpsGate-Event": event}
        await post_json(self.transport, self.cfg.url, body, headers, self.timeout)

    async def requested(self, message: ApprovalMessage) -> None:
        await self._send("approval.requested", message)

    async def settled(self, message: ApprovalMessage) -> None:
        if self.cfg.send_settled:
            await self._send("approval.settled", message)
