"""Fan-out of approval events to the configured channels, off the approval path.

Follows `approval.requested` (post) and the decision topics (update / follow up). Each
delivery runs in its own task with a per-attempt timeout and retries with backoff; the
outcome is audited (`approval.notify`) and published on the bus for the web console. A slow
or broken channel never delays a request, a decision or another channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from opsgate.approvals.channels.base import Channel, DeliveryError, wants
from opsgate.approvals.channels.http_channels import TeamsChannel, WebhookChannel
from opsgate.approvals.channels.message import ApprovalMessage, build_message, decision_note
from opsgate.approvals.channels.settings import ChannelsSettings
from opsgate.approvals.channels.slack import SlackChannel
from opsgate.approvals.models import ApprovalRequest
from opsgate.approvals.service import ApprovalService
from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn
from opsgate.bus.base import EventBus
from opsgate.errors import ConfigError, OpsGateError
from opsgate.guard.service import GuardService
from opsgate.telemetry.logging import get_logger
from opsgate.vault.service import VaultService

log = get_logger("opsgate.approvals.channels")

# Topics after which a posted message is brought up to date. "approval.settled" covers
# denied/expired/executed/failed/cancelled; "approval.approved" shows the decision before the
# run ends.
UPDATE_TOPICS = ("approval.approved", "approval.settled")
NOTIFY_TOPIC = "approval.notify"
_REMEMBER = 20_000


class ChannelNotifier:
    def __init__(
        self,
        settings: ChannelsSettings,
        *,
        approvals: ApprovalService,
        vault: VaultService,
        audit: Auditor,
        bus: EventBus,
        guard: GuardService | None,
        public_url: str | None,
    ) -> None:
        self.settings = settings
        self.approvals, self.vault, self.audit, self.bus = approvals, vault, audit, bus
        self.guard, self.public_url = guard, public_url
        self.transport = httpx.AsyncHTTPTransport(retries=0)
        self.slack: SlackChannel | None = (
            SlackChannel(settings.slack, vault, settings.timeout_seconds)
            if settings.slack.enabled
            else None
        )
        self.channels: list[Channel] = [self.slack] if self.slack is not None else []
        t, timeout = self.transport, settings.timeout_seconds
        self.channels += [
            TeamsChannel(
                c, vault, t, timeout=timeout, allow_loopback_http=settings.allow_loopback_http
            )
            for c in settings.teams
        ]
        self.channels += [WebhookChannel(c, vault, t, timeout=timeout) for c in settings.webhooks]
        self._followers: list[asyncio.Task[None]] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        # (channel, approval id) -> the last state sent as an update.
        self._last: OrderedDict[tuple[str, str], str] = OrderedDict()

    @classmethod
    async def start(cls, runtime: Any, settings: ChannelsSettings) -> ChannelNotifier:
        """Build from a started Runtime and follow the bus (nothing is followed if no channel)."""
        if settings.allow_loopback_http and runtime.settings.mode == "production":
            raise ConfigError(
                [("approvals.channels.allow_loopback_http", "not allowed in production mode")]
            )
        notifier = cls(
            settings,
            approvals=runtime.approvals,
            vault=runtime.vault,
            audit=runtime.audit,
            bus=runtime.bus,
            guard=runtime.guard,
            public_url=runtime.settings.server.public_url,
        )
        await notifier.follow()
        return notifier

    async def follow(self) -> None:
        if not self.channels:
            return
        topics: list[tuple[str, Callable[[dict[str, Any]], Awaitable[None]]]] = [
            ("approval.requested", self._on_requested),
            *((t, self._on_update) for t in UPDATE_TOPICS),
        ]
        ready = [asyncio.Event() for _ in topics]
        self._followers = [
            asyncio.create_task(self._follow(t, h, r))
            for (t, h), r in zip(topics, ready, strict=True)
        ]
        for r in ready:
            await r.wait()

    async def aclose(self) -> None:
        for task in [*self._followers, *self._deliveries]:
            task.cancel()
        for task in [*self._followers, *self._deliveries]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._followers, self._deliveries = [], set()
        await self.transport.aclose()

    async def drain(self) -> None:
        """Wait for the deliveries in flight (tests, shutdown)."""
        while self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def _follow(
        self, topic: str, handle: Callable[[dict[str, Any]], Awaitable[None]], ready: asyncio.Event
    ) -> None:
        while True:
            try:
                events = self.bus.subscribe(topic)
                ready.set()
                async for event in events:
                    await handle(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("approval channel follower failed; resubscribing", topic=topic)
                await asyncio.sleep(1)

    async def _load(self, event: dict[str, Any]) -> ApprovalRequest | None:
        tenant, approval_id = event.get("tenant"), event.get("id")
        if not isinstance(tenant, str) or not isinstance(approval_id, str):
            return None
        if not any(c.tenant == tenant for c in self.channels):
            return None
        return await self.approvals.get(tenant, approval_id)

    async def _on_requested(self, event: dict[str, Any]) -> None:
        req = await self._load(event)
        if req is not None:
            self._spawn(req, "requested")

    async def _on_update(self, event: dict[str, Any]) -> None:
        req = await self._load(event)
        if req is not None:
            self._spawn(req, "settled")

    def _spawn(self, req: ApprovalRequest, kind: str) -> None:
        targets = [c for c in self.channels if wants(c, req.tenant_id, req.zone)]
        if not targets:
            return
        task = asyncio.create_task(self._fan_out(req, kind, targets))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _fan_out(self, req: ApprovalRequest, kind: str, targets: list[Channel]) -> None:
        if kind == "requested":
            message = await self._message(req)
            if message is not None:
                await asyncio.gather(*(self.deliver(c, kind, message) for c in targets))
            return
        # Updates of one request run one at a time on its latest state, so a late "approved"
        # never overwrites "executed", and each channel hears of each state once.
        lock = self._locks.setdefault(req.id, asyncio.Lock())
        self._lock_users[req.id] = self._lock_users.get(req.id, 0) + 1
        try:
            async with lock:
                fresh = await self.approvals.get(req.tenant_id, req.id)
                note = await decision_note(self.approvals.db, fresh)
                message = await self._message(fresh, note)
                if message is None:
                    return
                due = [c for c in targets if self._last.get((c.name, req.id)) != fresh.status]
                for c in due:
                    self._last[(c.name, req.id)] = fresh.status
                while len(self._last) > _REMEMBER:
                    self._last.popitem(last=False)
                await asyncio.gather(*(self.deliver(c, kind, message) for c in due))
        finally:
            self._lock_users[req.id] -= 1
            if not self._lock_users[req.id]:
                del self._lock_users[req.id], self._locks[req.id]

    async def _message(self, req: ApprovalRequest, note: str = "") -> ApprovalMessage | None:
        try:
            return await build_message(req, self.guard, self.public_url, note)
        except Exception:
            log.exception("approval message could not be built", approval=req.id)
            return None

    async def deliver(self, channel: Channel, kind: str, message: ApprovalMessage) -> bool:
        """One delivery with timeout and retries; never raises. True if delivered."""
        send = channel.requested if kind == "requested" else channel.settled
        s = self.settings
        reason, status, attempt = "", None, 0
        for attempt in range(1, s.attempts + 1):
            try:
                await asyncio.wait_for(send(message), s.timeout_seconds)
                await self._record(channel, kind, message, True, attempt, "", None)
                return True
            except DeliveryError as exc:
                reason, status = exc.reason, exc.status
                if not exc.retry:
                    break
            except TimeoutError:
                reason, status = "timeout", None
            except OpsGateError as exc:  # e.g. the vault reference does not resolve
                reason, status = f"{exc.code}: {exc.detail}", None
                break
            except Exception as exc:  # the edge: a channel bug must not stop the others
                reason, status = type(exc).__name__, None
            log.warning(
                "approval notification attempt failed",
                channel=channel.name, approval=message.id, attempt=attempt, reason=reason,
                status=status,
            )  # fmt: skip
            if attempt < s.attempts:
                delay = min(30.0, s.backoff_seconds * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # jitter
        log.error(
            "approval notification given up",
            channel=channel.name, approval=message.id, attempts=attempt, reason=reason,
            status=status,
        )  # fmt: skip
        await self._record(channel, kind, message, False, attempt, reason, status)
        return False

    async def _record(
        self,
        channel: Channel,
        kind: str,
        message: ApprovalMessage,
        ok: bool,
        attempts: int,
        reason: str,
        status: int | None,
    ) -> None:
        payload: dict[str, Any] = {
            "channel": channel.name,
            "kind": kind,
            "status": message.status,
            "attempts": attempts,
        }
        if status is not None:
            payload["http_status"] = status
        with contextlib.suppress(Exception):
            await self.audit.emit(
                AuditEventIn(
                    tenant=message.tenant,
                    actor="system",
                    action="approval.notify",
                    resource=f"approval:{message.id}",
                    outcome="success" if ok else "failure",
                    reason=reason[:200],
                    payload=payload,
                )
            )
            await self.bus.publish(
                NOTIFY_TOPIC,
                {"tenant": message.tenant, "id": message.id, "ok": ok, **payload},
            )
