"""Adapters from the gateway's ports to the other domains' services.

Where a component is switched off in configuration, the matching "off" implementation
here is used, and says so in the audit event's decisions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opsgate.gateway.ports import PromptVerdict
from opsgate.guard.messages import ResponseRestorer, inspect_messages
from opsgate.guard.service import GuardService
from opsgate.identity.principal import Principal
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.gateway")


class GuardOff:
    """guard.enabled = false: prompts pass unscanned, classified `internal`."""

    async def inspect(
        self, principal: Principal, model: str, messages: list[dict[str, Any]]
    ) -> PromptVerdict:
        return PromptVerdict(classification="internal")


class QuotaOff:
    """No quota service: requests are admitted without limits."""

    async def admit(
        self, principal: Principal, model: str, est_tokens: int, est_cost: float
    ) -> Any:
        return None

    async def settle(self, reservation: Any, tokens_in: int, tokens_out: int, cost: float) -> None:
        return None

    async def release(self, reservation: Any) -> None:
        return None


class KillSwitchesOff:
    async def check(self, model: str, key_id: str | None) -> None:
        return None

    def is_killed(self, deployment: str) -> bool:
        return False


class UsageToLog:
    """No usage recorder: usage lines go to the structured log."""

    def record(self, event: Any) -> None:
        log.info(
            "gateway usage",
            model=event.model,
            deployment=event.deployment,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            status=event.status,
        )


class GuardAdapter:
    """The guard service behind the gateway's PromptGuard port."""

    def __init__(self, svc: GuardService) -> None:
        self.svc = svc

    async def inspect(
        self, principal: Principal, model: str, messages: list[dict[str, Any]]
    ) -> PromptVerdict:
        guard = await self.svc.guard_for(principal.tenant)
        size = sum(len(str(m.get("content") or "")) for m in messages)
        if size > self.svc.settings.thread_above_chars:
            v = await asyncio.to_thread(inspect_messages, guard, messages)
        else:
            v = inspect_messages(guard, messages)
        return PromptVerdict(
            classification=v.classification,
            blocked=v.blocked,
            reason=v.reason,
            findings=list(v.findings),
            messages=v.messages,
            response_filter=ResponseRestorer(guard, v.vault, allowed=True),
        )
