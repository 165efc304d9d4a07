"""`KillSwitches`: flip (DB + bus + audit) and check (memory only) kill switches.

A flip writes the database first (the truth), applies locally, then publishes
`killswitch.changed`; every replica applies the event on receipt. Each replica also
re-reads the database every `reload_seconds`, which repairs a lost bus message and is how a
flip from a separate process reaches a server on the in-process bus.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn
from opsgate.bus.base import EventBus
from opsgate.db.base import Tenant, utcnow
from opsgate.db.engine import Database
from opsgate.errors import Forbidden, NotFound, Unavailable, ValidationFailed
from opsgate.gateway.killswitch.models import KillSwitchRow, TenantKillSwitchRow
from opsgate.gateway.killswitch.settings import KillSwitchSettings
from opsgate.gateway.killswitch.state import (
    PLATFORM_TARGET,
    SCOPES,
    TENANT_SCOPES,
    Scope,
    Switch,
    SwitchSet,
)
from opsgate.identity.principal import Principal
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.killswitch")

TOPIC = "killswitch.changed"
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Catalog:
    """Known model and deployment names, so a typo is refused rather than switched off."""

    models: frozenset[str] = frozenset()
    deployments: frozenset[str] = frozenset()


def _check_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise ValidationFailed("a reason is required", errors=[_field("reason", "required")])
    if len(text) > MAX_REASON or _CONTROL.search(text):
        raise ValidationFailed(
            "invalid reason",
            errors=[_field("reason", f"at most {MAX_REASON} characters, no control characters")],
        )
    return text


def _field(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message, "type": "value_error"}


def _scope(value: str) -> Scope:
    if value not in SCOPES:
        raise ValueError(f"unknown kill switch scope in the database: {value!r}")
    return value


def _actor(actor: Principal | str) -> str:
    return actor.id if isinstance(actor, Principal) else actor


class KillSwitches:
    """The kill-switch set of one replica, kept current from the bus and the database."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        audit: Auditor,
        *,
        settings: KillSwitchSettings,
        operator_tenant: str,
        catalog: Catalog | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.audit = audit
        self.settings = settings
        self.operator_tenant = operator_tenant
        self.catalog = catalog or Catalog()
        self._set = SwitchSet()
        self._pending: list[tuple[Literal["kill", "revive"], Switch]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_load = 0.0
        reg = registry if registry is not None else CollectorRegistry()
        self._gauge = Gauge(
            "opsgate_killswitch_active", "Active kill switches by scope", ["scope"], registry=reg
        )
        self._publish_gauge()

    @classmethod
    async def start(
        cls,
        db: Database,
        bus: EventBus,
        audit: Auditor,
        *,
        settings: KillSwitchSettings,
        operator_tenant: str,
        catalog: Catalog | None = None,
        registry: CollectorRegistry | None = None,
    ) -> KillSwitches:
        ks = cls(
            db, bus, audit, settings=settings, operator_tenant=operator_tenant,
            catalog=catalog, registry=registry,
        )  # fmt: skip
        ks._tasks.append(asyncio.create_task(ks._listen(), name="killswitch-listen"))
        # Let the listener subscribe before the first load, so a flip in between is either
        # in the database snapshot or delivered as an event.
        await asyncio.sleep(0)
        await ks.reload()
        ks._tasks.append(asyncio.create_task(ks._reload_loop(), name="killswitch-reload"))
        return ks

    # -- hot path: memory only ----------------------------------------------------------

    def check(self, *, model: str, key_id: str | None, tenant: str | None = None) -> None:
        """Raise Unavailable (platform or model off) or Forbidden (API key off).

        Pass the caller's `tenant` so an API-key switch only matches within its tenant.
        """
        s = self._set
        if s.platform is not None:
            raise Unavailable(
                f"Model access is switched off by an operator: {s.platform.reason}",
                code="platform_killed",
            )
        m = s.models.get(model)
        if m is not None:
            raise Unavailable(
                f"Model {model!r} is switched off by an operator: {m.reason}", code="model_killed"
            )
        if key_id is not None and s.keys:
            k = s.key(key_id, tenant)
            if k is not None:
                raise Forbidden(f"This API key is switched off: {k.reason}", code="key_killed")

    def is_killed_deployment(self, name: str) -> bool:
        return name in self._set.deployments

    def is_killed(self, scope: Scope, target: str, tenant: str | None = None) -> bool:
        s = self._set
        if scope == "platform":
            return s.platform is not None
        if scope == "model":
            return target in s.models
        if scope == "deployment":
            return target in s.deployments
        return s.key(target, tenant) is not None

    def active(self, tenant: str | None = None) -> list[Switch]:
        """Operator-wide switches plus, with `tenant`, that tenant's own (else all)."""
        return [
            s for s in self._set.all() if s.tenant is None or tenant is None or s.tenant == tenant
        ]

    # -- flips ----------------------------------------------------------------------------

    def _validate(self, scope: str, target: str, tenant: str | None, *, known: bool) -> str:
        if scope not in SCOPES:
            raise ValidationFailed(
                f"unknown scope {scope!r}", errors=[_field("scope", f"one of {', '.join(SCOPES)}")]
            )
        if scope == "platform":
            if target not in ("", PLATFORM_TARGET):
                raise ValidationFailed(
                    "the platform switch takes no target",
                    errors=[_field("target", "empty or '*'")],
                )
            return PLATFORM_TARGET
        if not _TARGET.match(target):
            raise ValidationFailed("invalid target", errors=[_field("target", "a valid name")])
        if scope in TENANT_SCOPES and not tenant:
            raise ValidationFailed(f"scope {scope} needs a tenant")
        if known and scope == "model" and target not in self.catalog.models:
            raise NotFound(f"unknown model {target!r}")
        if known and scope == "deployment" and target not in self.catalog.deployments:
            raise NotFound(f"unknown deployment {target!r}")
        return target

    async def kill(
        self,
        scope: str,
        target: str,
        *,
        actor: Principal | str,
        reason: str,
        tenant: str | None = None,
        trace_id: str | None = None,
    ) -> Switch:
        """Switch `scope`/`target` off everywhere; audited. Re-killing updates the reason."""
        target = self._validate(scope, target, tenant, known=True)
        reason = _check_reason(reason)
        sw = Switch(
            cast(Scope, scope),  # checked by _validate
            target,
            tenant if scope in TENANT_SCOPES else None,
            reason,
            _actor(actor),
            utcnow(),
        )
        await self._store(sw)
        await self._announce("kill", sw, trace_id)
        return sw

    async def revive(
        self,
        scope: str,
        target: str,
        *,
        actor: Principal | str,
        reason: str,
        tenant: str | None = None,
        trace_id: str | None = None,
    ) -> Switch:
        """Switch `scope`/`target` back on; NotFound when it is not off."""
        target = self._validate(scope, target, tenant, known=False)
        reason = _check_reason(reason)
        owner = tenant if scope in TENANT_SCOPES else None
        if not await self._remove(scope, target, owner):
            raise NotFound(f"no active kill switch for {scope} {target!r}")
        sw = Switch(cast(Scope, scope), target, owner, reason, _actor(actor), utcnow())
        await self._announce("revive", sw, trace_id)
        return sw

    async def _store(self, sw: Switch) -> None:
        values: dict[str, Any] = {
            "scope": sw.scope, "target": sw.target, "reason": sw.reason,
            "actor": sw.actor, "created_at": sw.created_at,
        }  # fmt: skip
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        update = {k: values[k] for k in ("reason", "actor", "created_at")}
        if sw.tenant is None:
            stmt = insert(KillSwitchRow).values(**values)
            stmt = stmt.on_conflict_do_update(index_elements=["scope", "target"], set_=update)
        else:
            stmt = insert(TenantKillSwitchRow).values(tenant_id=sw.tenant, **values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["tenant_id", "scope", "target"], set_=update
            )
        async with self.db.session(sw.tenant) as s:
            await s.execute(stmt)

    async def _remove(self, scope: str, target: str, tenant: str | None) -> bool:
        if tenant is None:
            stmt = delete(KillSwitchRow).where(
                KillSwitchRow.scope == scope, KillSwitchRow.target == target
            )
        else:
            stmt = delete(TenantKillSwitchRow).where(
                TenantKillSwitchRow.tenant_id == tenant,
                TenantKillSwitchRow.scope == scope,
                TenantKillSwitchRow.target == target,
            )
        async with self.db.session(tenant) as s:
            result = await s.execute(stmt)
            return bool(getattr(result, "rowcount", 0))

    async def _announce(self, op: Literal["kill", "revive"], sw: Switch, trace: str | None) -> None:
        self._apply(op, sw)
        try:
            await self.bus.publish(TOPIC, sw.as_event(op))
        except Exception as exc:
            # The database already holds the change; other replicas get it on their reload.
            log.warning("kill switch event not published", error=type(exc).__name__)
        await self.audit.emit(
            AuditEventIn(
                tenant=sw.tenant or self.operator_tenant,
                actor=sw.actor,
                action=f"killswitch.{op}",
                resource=f"killswitch:{sw.scope}:{sw.target}",
                outcome="success",
                reason=sw.reason,
                payload={"scope": sw.scope, "target": sw.target, "tenant": sw.tenant},
                trace_id=trace,
            )
        )
        log.warning(
            f"kill switch {op}", scope=sw.scope, target=sw.target, actor=sw.actor,
            reason=sw.reason,
        )  # fmt: skip

    def _apply(self, op: Literal["kill", "revive"], sw: Switch) -> None:
        self._set.apply(op, sw)
        if self._pending is not None:
            self._pending.append((op, sw))
        self._publish_gauge()

    def _publish_gauge(self) -> None:
        for scope, n in self._set.counts().items():
            self._gauge.labels(scope).set(n)

    # -- keeping current ------------------------------------------------------------------

    async def reload(self) -> None:
        """Replace the set with the database's, keeping events that arrive meanwhile."""
        self._pending = []
        try:
            rows = await self._load()
            fresh = SwitchSet(rows)
            for op, sw in self._pending:
                fresh.apply(op, sw)
            self._set = fresh
            self._last_load = time.monotonic()
        finally:
            self._pending = None
        self._publish_gauge()

    async def _load(self) -> list[Switch]:
        out: list[Switch] = []
        async with self.db.session(None) as s:
            for r in (await s.execute(select(KillSwitchRow))).scalars():
                out.append(Switch(_scope(r.scope), r.target, None, r.reason, r.actor, r.created_at))
            tenants = list(
                (await s.execute(select(Tenant.id).where(Tenant.status == "active"))).scalars()
            )
        # Tenant rows are read per tenant: row-level security shows a session one tenant.
        for tenant in tenants:
            async with self.db.session(tenant) as s:
                rows = (await s.execute(select(TenantKillSwitchRow))).scalars()
                out.extend(
                    Switch(_scope(r.scope), r.target, tenant, r.reason, r.actor, r.created_at)
                    for r in rows
                )
        return out

    async def _listen(self) -> None:
        while True:
            try:
                async for ev in self.bus.subscribe(TOPIC):
                    self._on_event(ev)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("kill switch subscription failed; resubscribing", error=str(exc))
                await asyncio.sleep(1.0)

    def _on_event(self, ev: dict[str, Any]) -> None:
        parsed = Switch.from_event(ev) if isinstance(ev, dict) else None
        if parsed is None:
            log.warning("malformed kill switch event ignored")
            return
        self._apply(*parsed)

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_seconds)
            try:
                await self.reload()
            except Exception as exc:
                log.warning("kill switch reload failed", error=type(exc).__name__)

    def ready(self) -> str:
        age = time.monotonic() - self._last_load
        if age > max(30.0, 6 * self.settings.reload_seconds):
            return f"stale ({int(age)} s since the last reload)"
        return "ok"

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


def catalog_from(models: Iterable[tuple[str, Iterable[str]]]) -> Catalog:
    """A catalog from (model name, deployment names) pairs."""
    names: set[str] = set()
    deps: set[str] = set()
    for model, deployments in models:
        names.add(model)
        deps.update(deployments)
    return Catalog(frozenset(names), frozenset(deps))
