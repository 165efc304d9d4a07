"""Tools over REST (for runbooks and scripts); the MCP endpoint uses the same pipeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from opsgate.deps import RuntimeDep
from opsgate.identity.deps import CurrentPrincipal

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
    if out.status == "pending_approval" and out.approval_id and body.wait_seconds > 0:
        req = await rt.held.wait(
            p.tenant,
            out.approval_id,
            body.wait_seconds,
            poll=rt.settings.tools.approval_poll_seconds,
        )
        if req.status in ("executed", "failed"):
            out = await rt.tools.call(p, name, body.arguments, approval_id=req.id)
        elif req.status in ("denied", "expired"):
            out.status = "failed"
            out.reasons = [*out.reasons, f"approval {req.status}: nothing was executed"]
    return out.__dict__
