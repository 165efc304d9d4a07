"""Slack: Block Kit messages with Approve / Deny buttons through the Web API (slack_sdk).

The bot token and signing secret are vault references resolved at use, so rotating them in
the vault needs no restart. Message timestamps are remembered in memory to update posted
messages when a request settles; after a restart old messages keep their last state (the
link shows the live one).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from opsgate.approvals.channels.base import DeliveryError
from opsgate.approvals.channels.message import ApprovalMessage
from opsgate.approvals.channels.render import slack_blocks, summary
from opsgate.approvals.channels.settings import SlackChannelSettings
from opsgate.approvals.service import TERMINAL
from opsgate.vault.service import VaultService

# Slack errors where trying again cannot help.
_FINAL = {
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope",
    "channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "msg_too_long",
    "message_not_found", "cant_update_message", "user_not_in_channel",
}  # fmt: skip
_REMEMBER = 10_000


class SlackChannel:
    name = "slack"

    def __init__(self, cfg: SlackChannelSettings, vault: VaultService, timeout: float) -> None:
        self.cfg, self.vault, self.timeout = cfg, vault, timeout
        self.tenant, self.zones = cfg.tenant, list(cfg.zones)
        # approval id -> (channel id, message ts) of the message posted for it.
        self.posted: OrderedDict[str, tuple[str, str]] = OrderedDict()
        # Signatures of interaction requests already handled: a replay is refused.
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_use(self, signature: str, window: float = 600.0) -> bool:
        """False if this exact signed request was handled within `window` seconds."""
        now = time.monotonic()
        while self._seen and next(iter(self._seen.values())) < now - window:
            self._seen.popitem(last=False)
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True

    async def _client(self) -> AsyncWebClient:
        token = (await self.vault.resolve(self.tenant, self.cfg.bot_token)).reveal()
        return AsyncWebClient(
            token=token, base_url=self.cfg.base_url, timeout=max(1, int(self.timeout))
        )

    async def verifier(self) -> SignatureVerifier:
        secret = (await self.vault.resolve(self.tenant, self.cfg.signing_secret)).reveal()
        return SignatureVerifier(secret)

    async def _call(self, method: str, **kw: Any) -> dict[str, Any]:
        client = await self._client()
        try:
            resp = await client.api_call(method, json=kw)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "error")) if exc.response else "error"
            status = getattr(exc.response, "status_code", None)
            raise DeliveryError(
                f"slack {method}: {error}", status=status, retry=error not in _FINAL
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"slack {method}: {type(exc).__name__}") from None
        return dict(resp.data) if isinstance(resp.data, dict) else {}

    async def requested(self, message: ApprovalMessage) -> None:
        data = await self._call(
            "chat.postMessage",
            channel=self.cfg.channel,
            text=summary(message),
            blocks=slack_blocks(message),
            unfurl_links=False,
        )
        channel, ts = str(data.get("channel") or self.cfg.channel), str(data.get("ts") or "")
        if ts:
            self.posted[message.id] = (channel, ts)
            while len(self.posted) > _REMEMBER:
                self.posted.popitem(last=False)

    async def settled(self, message: ApprovalMessage) -> None:
        where = self.posted.get(message.id)
        if where is not None:
            await self.update(where[0], where[1], message)

    async def update(self, channel: str, ts: str, message: ApprovalMessage) -> None:
        if message.status in TERMINAL:
            self.posted.pop(message.id, None)
        else:
            self.posted[message.id] = (channel, ts)
        await self._call(
            "chat.update",
            channel=channel,
            ts=ts,
            text=summary(message),
            blocks=slack_blocks(message),
        )

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        await self._call("chat.postEphemeral", channel=channel, user=user, text=text)
