"""The running services of one OpsGate instance, built and closed by the app lifespan.

Each domain adds its service here; `create_app` only wires routes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsgate.approvals.channels.notifier import ChannelNotifier
from opsgate.approvals.service import ApprovalService
from opsgate.audit.base import Auditor
from opsgate.audit.service import AuditLog
from opsgate.audit.wiring import build_audit_log
from opsgate.bus.base import EventBus
from opsgate.bus.factory import build_bus
from opsgate.db.engine import Database
from opsgate.gateway.killswitch.service import KillSwitches
from opsgate.gateway.quota.controls import start_gateway_controls
from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.service import GatewayService
from opsgate.gateway.usage.recorder import UsageRecorder
from opsgate.gateway.wiring import build_gateway
from opsgate.guard.service import GuardService, guard_hash_key
from opsgate.identity.service import IdentityService
from opsgate.keyfile import resolve_secret_key
from opsgate.policy.service import PolicyService
from opsgate.settings import Settings
from opsgate.telemetry.logging import get_logger
from opsgate.telemetry.metrics import Metrics
from opsgate.telemetry.tracing import Tracing
from opsgate.tools.federation_service import FederationService
from opsgate.tools.held import ApprovalRunner
from opsgate.tools.service import ToolService
from opsgate.tools.wiring import build_tools
from opsgate.vault.kek import build_kek
from opsgate.vault.service import VaultService

log = get_logger("opsgate.runtime")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    metrics: Metrics
    tracing: Tracing
    secret_key: bytes
    audit: Auditor
    bus: EventBus
    identity: IdentityService = field(init=False)
    vault: VaultService = field(init=False)
    policy: PolicyService = field(init=False)
    approvals: ApprovalService = field(init=False)
    tools: ToolService = field(init=False)
    held: ApprovalRunner = field(init=False)
    federation: FederationService | None = field(default=None)
    channels: ChannelNotifier | None = field(default=None)
    draining: bool = field(default=False)
    gateway: GatewayService | None = field(default=None)
    guard: GuardService | None = field(default=None)
    quota: QuotaService | None = field(default=None)
    killswitches: KillSwitches | None = field(default=None)
    usage: UsageRecorder | None = field(default=None)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(
            settings.database_url,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
        )
        metrics = metrics or Metrics()
        await db.ensure_tenant(settings.default_tenant)
        audit = await build_audit_log(
            db,
            settings.audit,
            settings.data_dir,
            metrics.registry,
            fallback_tenant=settings.default_tenant,
        )
        rt = cls(
            settings=settings,
            db=db,
            metrics=metrics,
            tracing=tracing or Tracing(settings.telemetry),
            secret_key=resolve_secret_key(settings),
            audit=audit,
            bus=build_bus(settings.bus),
        )
        await rt.bus.start()
        rt.vault = VaultService(
            db, build_kek(settings.vault, settings.data_dir), settings.vault.max_secret_bytes
        )
        rt.identity = IdentityService(
            settings.identity,
            db,
            rt.secret_key,
            rt.audit,
            rt.bus,
            default_tenant=settings.default_tenant,
        )
        await rt.identity.start()
        rt.policy = PolicyService(settings.policy, rt.audit)
        await rt.policy.start()
        rt.approvals = ApprovalService(db, rt.audit, rt.bus, rt.policy, rt.secret_key)
        if settings.guard.enabled:
            rt.guard = await GuardService.start(
                settings.guard,
                hash_key=guard_hash_key(rt.secret_key),
                db=db,
                audit=rt.audit,
                bus=rt.bus,
            )
        if settings.gateway.enabled:
            await start_gateway_controls(rt)
        rt.gateway = build_gateway(rt)
        rt.tools, rt.federation = await build_tools(rt)
        rt.held = ApprovalRunner(rt.tools, sweep_seconds=settings.tools.approval_poll_seconds)
        await rt.held.start()
        rt.channels = await ChannelNotifier.start(rt, settings.approvals.channels)
        return rt

    async def ready(self) -> dict[str, str]:
        """Check each dependency; values are "ok" or a short reason."""
        checks: dict[str, str] = {}
        try:
            await self.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = type(exc).__name__
        try:
            await self.bus.ping()
            checks["bus"] = "ok"
        except Exception as exc:
            checks["bus"] = type(exc).__name__
        if self.guard is not None:
            checks["guard"] = self.guard.ready()
        if self.quota is not None:
            checks["quota"] = await self.quota.ready()
        if self.killswitches is not None:
            checks["killswitches"] = self.killswitches.ready()
        if self.usage is not None:
            checks["usage"] = self.usage.ready()
        return checks

    async def close(self) -> None:
        if self.channels is not None:
            await self.channels.aclose()
        await self.held.aclose()
        if self.gateway is not None:
            await self.gateway.aclose()
        if self.usage is not None:
            await self.usage.close()
        if self.killswitches is not None:
            await self.killswitches.close()
        if self.quota is not None:
            await self.quota.close()
        if self.guard is not None:
            await self.guard.aclose()
        if self.federation is not None:
            await self.federation.aclose()
        if self.tools.zone_catalog is not None:
            await self.tools.zone_catalog.aclose()
        for connector in self.tools.connectors:
            closer = getattr(connector, "aclose", None)
            if closer is not None:
                await closer()
        await self.identity.close()
        await self.policy.aclose()
        if isinstance(self.audit, AuditLog):
            await self.audit.close()
        else:
            await self.audit.flush()
        await self.bus.close()
        await self.db.dispose()
        self.tracing.shutdown()
