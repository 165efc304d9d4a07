"""Adapters from the gateway's ports to the other domains' services.

Where a component is switched off in configuration, the matching "off" implementation
here is used, and says so in the audit event's decisions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opsgate.gateway.killswitch.service import KillSwitches
from opsgate.gateway.ports import PromptVerdict, UsageEvent
from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.usage.recorder import UsageRecord, UsageRecorder
from opsgate.guard.messages import ResponseRestorer, inspect_messages
from opsgate.guard.policy import Action
from opsgate.guard.service import GuardService
from opsgate.identity.principal import Principal
from opsgate.telemetry.logging import get_logger
from opsgate.vault.service import VaultService

log = get_logger("opsgate.gateway")


class GuardOff:
    """guard.enabled = false: prompts pass unscanned, classified `internal`."""

    async def inspect(
        self,
        principal: Principal,
        model: str,
        messages: list[dict[str, Any]],
        actions: dict[str, str] | None = None,
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
    async def check(self, model: str, key_id: str | None, tenant: str) -> None:
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
        self,
        principal: Principal,
        model: str,
        messages: list[dict[str, Any]],
        actions: dict[str, str] | None = None,
    ) -> PromptVerdict:
        guard = await self.svc.guard_for(principal.tenant)
        known = {a.value for a in Action}
        # Obligations name guard actions; anything else is ignored rather than a 500.
        overrides = {k: Action(v) for k, v in (actions or {}).items() if v in known} or None
        size = sum(len(str(m.get("content") or "")) for m in messages)
        if size > self.svc.settings.thread_above_chars:
            v = await asyncio.to_thread(inspect_messages, guard, messages, overrides)
        else:
            v = inspect_messages(guard, messages, overrides)
        return PromptVerdict(
            classification=v.classification,
            blocked=v.blocked,
            reason=v.reason,
            findings=list(v.findings),
            messages=v.messages,
            response_filter=ResponseRestorer(guard, v.vault, allowed=True),
        )


class QuotaAdapter:
    """The quota service (RPM/TPM/concurrency/budget, reserve-then-settle)."""

    def __init__(self, svc: QuotaService) -> None:
        self.svc = svc

    async def admit(
        self, principal: Principal, model: str, est_tokens: int, est_cost: float
    ) -> Any:
        return await self.svc.admit(
            principal, model=model, est_tokens=est_tokens, est_cost=est_cost
        )

    async def settle(self, reservation: Any, tokens_in: int, tokens_out: int, cost: float) -> None:
        await self.svc.settle(reservation, tokens_in=tokens_in, tokens_out=tokens_out, cost=cost)

    async def release(self, reservation: Any) -> None:
        await self.svc.release(reservation)


class KillSwitchAdapter:
    def __init__(self, switches: KillSwitches) -> None:
        self.switches = switches

    async def check(self, model: str, key_id: str | None, tenant: str) -> None:
        self.switches.check(model=model, key_id=key_id, tenant=tenant)

    def is_killed(self, deployment: str) -> bool:
        return self.switches.is_killed_deployment(deployment)


class UsageAdapter:
    def __init__(self, recorder: UsageRecorder) -> None:
        self.recorder = recorder

    def record(self, event: UsageEvent) -> None:
        self.recorder.record(
            UsageRecord(
                tenant=event.tenant,
                principal_id=event.principal_id,
                key_id=event.key_id,
                groups=event.groups,
                model=event.model,
                deployment=event.deployment,
                route=event.route,
                tokens_in=event.input_tokens,
                tokens_out=event.output_tokens,
                cost=event.cost,
                latency_ms=event.latency_ms,
                status=event.status,
                request_id=event.request_id,
                provider=event.provider,
                operation=event.operation,
                stream=event.stream,
                trace_id=event.trace_id,
            )
        )


class VaultSecrets:
    """Provider credentials from the vault, in the tenant that holds the platform's secrets."""

    def __init__(self, vault: VaultService, tenant: str) -> None:
        self.vault = vault
        self.tenant = tenant

    async def resolve(self, ref: str) -> str:
        return (await self.vault.resolve(self.tenant, ref)).reveal()
