"""Tools over REST (for runbooks and scripts); the MCP endpoint uses the same pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from opsgate.deps import RuntimeDep
from opsgate.errors import NotFound, Unavailable
from opsgate.identity.deps import AdminPrincipal, CurrentPrincipal, require_roles
from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ZoneSpec
from opsgate.tools.executions import undo
from opsgate.tools.models import ToolExecution
from opsgate.tools.zone_overrides import ZoneEdit

router = APIRouter(prefix="/api/v1/tools", tags=["tools"])


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arguments: dict[str, Any] = Field(default_factory=dict)
    rationale: str = Field("", max_length=4000)
    approval_id: str | None = Field(None, max_length=36)
    # Hold the request up to this long while an approval is pending (0: answer at once).
    wait_seconds: float = Field(0, ge=0, le=300)


@router.get("")
async def tools_list(p: CurrentPrincipal, rt: RuntimeDep) -> list[dict[str, Any]]:
    """The tools this principal may call, with their schemas, zones, gates and annotations."""
    return [
        {
            "name": s.name,
            "title": s.title,
            "description": s.description,
            "input_schema": s.input_schema,
            "zone": s.zone,
            "process_area": s.process_area,
            "risk": s.risk,
            "gate": s.effective_gate,
            "annotations": s.annotations(),
        }
        for s in await rt.tools.visible(p)
    ]


@router.post("/{name}/call")
async def tools_call(
    name: str, body: ToolCall, p: CurrentPrincipal, rt: RuntimeDep, request: Request
) -> dict[str, Any]:
    out = await rt.tools.call(
        p,
        name,
        body.arguments,
        rationale=body.rationale,
        approval_id=body.approval_id,
        trace_id=getattr(request.state, "trace_id", None),
    )
    if out.status == "pending_approval":
        out = await rt.held.hold(p, body.arguments, out, body.wait_seconds)
    return out.__dict__


class Undo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rationale: str = Field("", max_length=4000)


class ExecutionView(BaseModel):
    id: str
    tool: str
    arguments: dict[str, Any]
    actor: str
    gate: str
    status: str
    prior: dict[str, Any] | None
    approval_id: str | None
    undo_of: str | None
    undone_by: str | None
    undo_approval_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, r: ToolExecution) -> ExecutionView:
        return cls(
            id=r.id, tool=r.tool, arguments=orjson.loads(r.arguments), actor=r.actor,
            gate=r.gate, status=r.status, prior=r.prior, approval_id=r.approval_id,
            undo_of=r.undo_of, undone_by=r.undone_by, undo_approval_id=r.undo_approval_id,
            created_at=r.created_at,
        )  # fmt: skip


def _may_see_all(p: Any) -> bool:
    return bool(p.has_role("admin", "operator", "approver", "auditor"))


class ConnectorView(BaseModel):
    name: str
    state: str
    reason: str
    tools: int


Operator = Annotated[Principal, Depends(require_roles("admin", "operator", "auditor"))]


@router.get("/connectors", response_model=list[ConnectorView])
async def tools_connectors(p: Operator, rt: RuntimeDep) -> list[ConnectorView]:
    """Each connector's own status (ready, disabled, or failed with why) and its tool count."""
    out = []
    for c in rt.tools.connectors:
        st = await c.status()
        n = sum(1 for _, owner in rt.tools.tools.values() if owner is c)
        out.append(ConnectorView(name=c.name, state=st.state, reason=st.reason, tools=n))
    return out


@router.get("/executions", response_model=list[ExecutionView])
async def tools_executions(
    p: CurrentPrincipal, rt: RuntimeDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[ExecutionView]:
    """Recent executions of write tools (yours, or all for operators and auditors)."""
    rows = await rt.tools.executions.recent(p.tenant, limit)
    return [ExecutionView.of(r) for r in rows if _may_see_all(p) or r.actor == p.id]


@router.post("/executions/{execution_id}/undo")
async def tools_undo(
    execution_id: str, body: Undo, p: CurrentPrincipal, rt: RuntimeDep
) -> dict[str, Any]:
    """Run the tool's inverse with the recorded prior state, through the same gates."""
    row = await rt.tools.executions.get(p.tenant, execution_id)
    if not (_may_see_all(p) or row.actor == p.id):
        raise NotFound(f"no execution {execution_id!r}")
    out = await undo(rt.tools, p, execution_id, body.rationale)
    return out.__dict__


@router.get("/zones", response_model=list[ZoneSpec])
async def tools_zones(p: CurrentPrincipal, rt: RuntimeDep) -> list[ZoneSpec]:
    """The zone catalog as it applies to your tenant (shipped zones plus its edits)."""
    return list((await rt.tools.zones_for(p.tenant)).values())


def _catalog(rt: Any) -> Any:
    if rt.tools.zone_catalog is None:
        raise Unavailable("zone edits are not available", code="zones_unavailable")
    return rt.tools.zone_catalog


@router.put("/zones/{zone_id}", response_model=ZoneSpec)
async def tools_zone_edit(
    zone_id: str, body: ZoneEdit, p: AdminPrincipal, rt: RuntimeDep
) -> ZoneSpec:
    """Change a zone's default gate, sensitivity or process areas for your tenant."""
    spec: ZoneSpec = await _catalog(rt).edit(p.tenant, zone_id, body, p.id)
    return spec


@router.delete("/zones/{zone_id}", response_model=ZoneSpec)
async def tools_zone_reset(zone_id: str, p: AdminPrincipal, rt: RuntimeDep) -> ZoneSpec:
    """Drop your tenant's edits of a zone (back to the shipped definition)."""
    spec: ZoneSpec = await _catalog(rt).reset(p.tenant, zone_id, p.id)
    return spec
