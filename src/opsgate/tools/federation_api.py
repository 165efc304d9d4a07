"""Admin API for federated upstream MCP servers: list, approve or revoke a tool, refresh.

Upstreams are platform configuration, so only admins of the operator tenant act here. There
is deliberately no endpoint or field that creates an upstream or sets a stdio command: those
come from configuration files only (SECURITY.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from opsgate.deps import RuntimeDep
from opsgate.errors import Forbidden, Unavailable
from opsgate.identity.deps import require_roles
from opsgate.identity.principal import Principal
from opsgate.tools.federation import FederatedConnector, UpstreamTool
from opsgate.tools.federation_service import FederationService

router = APIRouter(prefix="/api/v1/tools/upstreams", tags=["tools"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]


def _federation(p: Admin, rt: RuntimeDep) -> FederationService:
    if p.tenant != rt.settings.default_tenant:
        raise Forbidden("upstream MCP servers serve every tenant; only operator admins manage them")
    svc = getattr(rt, "federation", None)
    if not isinstance(svc, FederationService):
        raise Unavailable("no upstream MCP servers are configured")
    return svc


Federation = Annotated[FederationService, Depends(_federation)]


class Approve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The fingerprint the admin reviewed; approval fails (409) if the tool changed since.
    fingerprint: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    reason: str = Field("", max_length=2000)


class Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Why (mandatory): kept in the audit event.
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")


class Refresh(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpstreamToolView(BaseModel):
    name: str  # as offered by OpsGate: <upstream>.<tool>
    upstream_name: str
    state: Literal["enabled", "pending", "changed", "flagged", "rejected"]
    reason: str
    findings: list[str]
    fingerprint: str
    approved_fingerprint: str | None
    risk: str | None
    gate: str | None
    description: str | None

    @classmethod
    def of(cls, upstream: str, e: UpstreamTool) -> UpstreamToolView:
        spec = e.found.spec
        return cls(
            name=f"{upstream}.{e.found.local}", upstream_name=e.found.upstream_name,
            state=e.state, reason=e.reason, findings=list(e.findings),
            fingerprint=e.found.fingerprint, approved_fingerprint=e.approved_fingerprint,
            risk=spec.risk if spec else None, gate=spec.effective_gate if spec else None,
            description=e.found.definition.get("description"),
        )  # fmt: skip


class UpstreamView(BaseModel):
    name: str
    transport: str
    status: Literal["ready", "disabled", "failed"]
    reason: str
    trust_on_first_use: bool
    tools: list[UpstreamToolView]

    @classmethod
    async def of(cls, c: FederatedConnector) -> UpstreamView:
        st = await c.status()
        return cls(
            name=c.name, transport=c.spec.transport, status=st.state, reason=st.reason,
            trust_on_first_use=c.spec.trust_on_first_use,
            tools=[UpstreamToolView.of(c.name, e) for e in c.entries()],
        )  # fmt: skip


@router.get("", response_model=list[UpstreamView])
async def upstreams_list(fed: Federation) -> list[UpstreamView]:
    return [await UpstreamView.of(c) for c in fed.connectors]


@router.post("/{name}/tools/{tool}/approve", response_model=UpstreamToolView)
async def upstreams_approve_tool(
    name: str, tool: str, body: Approve, p: Admin, fed: Federation
) -> UpstreamToolView:
    entry = await fed.approve(name, tool, p.id, body.fingerprint, body.reason)
    return UpstreamToolView.of(name, entry)


@router.post("/{name}/tools/{tool}/revoke", response_model=UpstreamToolView)
async def upstreams_revoke_tool(
    name: str, tool: str, body: Revoke, p: Admin, fed: Federation
) -> UpstreamToolView:
    """Withdraw a tool's approval: disabled at once, on refresh and restart too, until an
    admin approves it again (trust on first use does not re-enable it)."""
    entry = await fed.revoke(name, tool, p.id, body.reason)
    return UpstreamToolView.of(name, entry)


@router.post("/{name}/refresh", response_model=UpstreamView)
async def upstreams_refresh(
    name: str, p: Admin, fed: Federation, body: Refresh | None = None
) -> UpstreamView:
    return await UpstreamView.of(await fed.refresh(name, p.id))
