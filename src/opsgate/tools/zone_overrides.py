"""Per-tenant edits of the zone catalog (default gate, sensitivity, extra process areas).

zones.yaml ships the 15 operational zones; a tenant's admin may raise or lower a zone's
default gate and sensitivity for their tenant, or add process areas. Tools keep the zone
they declare; the effective zone is the shipped one with the tenant's override applied.
Overrides are cached per tenant and dropped on change (here, and on other replicas through
the bus).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, DateTime, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn
from opsgate.bus.base import EventBus
from opsgate.db.base import Base, TenantScoped, utcnow
from opsgate.db.engine import Database
from opsgate.errors import NotFound
from opsgate.tools.catalog import Gate, Sensitivity, ZoneSpec

TOPIC = "tools.zones.changed"


class ZoneOverride(TenantScoped, Base):
    __tablename__ = "zone_overrides"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    default_gate: Mapped[str | None] = mapped_column(String(2), nullable=True)
    sensitivity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    extra_process_areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_by: Mapped[str] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ZoneEdit(BaseModel):
    """What a tenant may change about a zone (absent = keep the shipped value)."""

    model_config = ConfigDict(extra="forbid")
    default_gate: Gate | None = None
    sensitivity: Sensitivity | None = None
    extra_process_areas: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")]] = Field(
        default_factory=list, max_length=50
    )


class ZoneCatalog:
    def __init__(
        self, shipped: dict[str, ZoneSpec], db: Database, audit: Auditor, bus: EventBus
    ) -> None:
        self.shipped, self.db, self.audit, self.bus = shipped, db, audit, bus
        self._cache: dict[str, dict[str, ZoneSpec]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()

        async def follow() -> None:
            events = self.bus.subscribe(TOPIC)
            ready.set()
            async for event in events:
                self._cache.pop(str(event.get("tenant")), None)

        self._task = asyncio.create_task(follow())
        await ready.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def for_tenant(self, tenant: str) -> dict[str, ZoneSpec]:
        zones = self._cache.get(tenant)
        if zones is None:
            async with self.db.session(tenant) as s:
                rows = list((await s.execute(select(ZoneOverride))).scalars())
            zones = dict(self.shipped)
            for row in rows:
                base = zones.get(row.zone)
                if base is not None:
                    zones[row.zone] = _apply(base, row)
            self._cache[tenant] = zones
        return zones

    async def edit(self, tenant: str, zone: str, edit: ZoneEdit, actor: str) -> ZoneSpec:
        if zone not in self.shipped:
            raise NotFound(f"no zone {zone!r}")
        areas = sorted(set(edit.extra_process_areas) - set(self.shipped[zone].process_areas))
        async with self.db.session(tenant) as s:
            row = await s.get(ZoneOverride, (tenant, zone))
            if row is None:
                row = ZoneOverride(tenant_id=tenant, zone=zone)
                s.add(row)
            row.default_gate, row.sensitivity = edit.default_gate, edit.sensitivity
            row.extra_process_areas = areas
            row.updated_by, row.updated_at = actor, utcnow()
        await self._changed(tenant, zone, actor, "tool.zone.edit", edit.model_dump())
        return (await self.for_tenant(tenant))[zone]

    async def reset(self, tenant: str, zone: str, actor: str) -> ZoneSpec:
        if zone not in self.shipped:
            raise NotFound(f"no zone {zone!r}")
        async with self.db.session(tenant) as s:
            await s.execute(delete(ZoneOverride).where(ZoneOverride.zone == zone))
        await self._changed(tenant, zone, actor, "tool.zone.reset", {})
        return self.shipped[zone]

    async def _changed(
        self, tenant: str, zone: str, actor: str, action: str, payload: dict[str, Any]
    ) -> None:
        self._cache.pop(tenant, None)
        await self.audit.emit(
            AuditEventIn(
                tenant=tenant,
                actor=actor,
                action=action,
                resource=f"zone:{zone}",
                outcome="success",
                payload=payload,
            )
        )
        await self.bus.publish(TOPIC, {"tenant": tenant, "zone": zone})


def _apply(base: ZoneSpec, row: ZoneOverride) -> ZoneSpec:
    update: dict[str, Any] = {}
    if row.default_gate:
        update["default_gate"] = row.default_gate
    if row.sensitivity:
        update["sensitivity"] = row.sensitivity
    if row.extra_process_areas:
        update["process_areas"] = [*base.process_areas, *row.extra_process_areas]
    return base.model_copy(update=update)
