"""Which upstream tools are enabled: approved fingerprints, poisoning checks, admin actions.

A tool is enabled only while its current fingerprint equals the one approved for it (by an
admin, or recorded on first sight under `trust_on_first_use`). New tools wait for approval; a
changed definition (rug pull) disables the tool until an admin approves the new fingerprint;
a tool the poisoning checks flag waits for an admin even under trust-on-first-use. Every state
change, approval and admin refresh is audited (operator tenant).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import select

from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn, Outcome
from opsgate.db.engine import Database
from opsgate.errors import ConfigError, Conflict, NotFound, Unavailable
from opsgate.guard.service import GuardService
from opsgate.tools.catalog import ZoneSpec
from opsgate.tools.federation import Discovered, FederatedConnector, UpstreamTool
from opsgate.tools.federation_models import UpstreamToolApproval
from opsgate.tools.federation_scan import poisoning_findings
from opsgate.tools.federation_settings import UpstreamSettings

TOFU = "trust_on_first_use"
# Stored in place of a fingerprint when an admin revokes a tool's approval.
REVOKED = "revoked"
_OUTCOME: dict[str, Outcome] = {
    "enabled": "success", "pending": "pending", "changed": "denied", "flagged": "denied",
    "rejected": "denied",
}  # fmt: skip


class FederationService:
    def __init__(
        self,
        settings: UpstreamSettings,
        zones: dict[str, ZoneSpec],
        *,
        db: Database,
        audit: Auditor,
        guard: GuardService | None,
        resolve_secret: Callable[[str], Awaitable[str]],
        operator_tenant: str = "default",
        reserved_names: frozenset[str] = frozenset({"host"}),
    ) -> None:
        self.db, self.audit, self.guard = db, audit, guard
        self.operator_tenant = operator_tenant
        clash = [u.name for u in settings.upstreams if u.name in reserved_names]
        if clash:
            where = "tools.federation.upstreams"
            raise ConfigError([(where, f"name taken by a built-in connector: {n}") for n in clash])
        self.connectors = [
            FederatedConnector(u, zones, resolve_secret, verify=self._verify)
            for u in settings.upstreams
        ]
        self._by_name = {c.name: c for c in self.connectors}

    def set_on_change(self, hook: Callable[[], None]) -> None:
        """Called whenever an upstream's enabled tools change (e.g. ToolService.refresh_tools)."""
        for c in self.connectors:
            c.on_change = hook

    def get(self, name: str) -> FederatedConnector:
        c = self._by_name.get(name)
        if c is None:
            raise NotFound(f"no upstream MCP server {name!r}")
        return c

    async def start(self) -> None:
        """Connect and verify every enabled upstream; a failure is kept as that upstream's
        status (it does not stop OpsGate)."""
        await asyncio.gather(*(self._try_refresh(c) for c in self.connectors if c.spec.enabled))

    async def _try_refresh(self, c: FederatedConnector) -> None:
        with contextlib.suppress(Unavailable):  # kept in c.last_failure, and logged
            await c.refresh()

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.connectors), return_exceptions=True)

    async def refresh(self, name: str, actor: str) -> FederatedConnector:
        c = self.get(name)
        try:
            await c.refresh()
        except Unavailable as exc:
            await self._event(
                actor, "tool.upstream.refresh", f"upstream:{name}", "failure", exc.detail
            )
            raise
        await self._event(actor, "tool.upstream.refresh", f"upstream:{name}", "success", "")
        return c

    async def approve(
        self, name: str, tool: str, actor: str, fingerprint: str | None = None, reason: str = ""
    ) -> UpstreamTool:
        """Approve the tool's current definition (optionally: only if it is `fingerprint`,
        i.e. exactly what the admin reviewed)."""
        c = self.get(name)
        entry = next((e for e in c.entries() if e.found.local == tool), None)
        if entry is None:
            raise NotFound(f"upstream {name!r} offers no tool {tool!r} (refresh first?)")
        if entry.state == "rejected":
            raise Conflict(f"{name}.{tool} cannot be offered: {entry.reason}", code="rejected")
        if fingerprint is not None and fingerprint != entry.found.fingerprint:
            raise Conflict(
                "the tool's definition changed since you reviewed it; review it again",
                code="fingerprint_mismatch",
            )
        await self._store(c.name, entry.found, actor)
        approved = UpstreamTool(
            entry.found, "enabled", f"approved by {actor}", entry.findings, entry.found.fingerprint
        )
        c.replace(approved)
        await self._event(
            actor, "tool.upstream.approved", f"tool:{name}.{tool}", "success", reason[:500],
            {"previous_state": entry.state, "fingerprint": entry.found.fingerprint,
             "findings": list(entry.findings)},
        )  # fmt: skip
        return approved

    async def revoke(self, name: str, tool: str, actor: str, reason: str = "") -> UpstreamTool:
        """Withdraw a tool's approval: it is disabled at once and stays so, across refreshes,
        restarts and trust-on-first-use, until an admin approves it again."""
        c = self.get(name)
        entry = next((e for e in c.entries() if e.found.local == tool), None)
        if entry is None:
            raise NotFound(f"upstream {name!r} offers no tool {tool!r} (refresh first?)")
        if entry.approved_fingerprint is None or entry.approved_fingerprint == REVOKED:
            raise Conflict(f"{name}.{tool} has no approval to revoke", code="not_approved")
        await self._store(c.name, entry.found, actor, fingerprint=REVOKED)
        why = f"approval revoked by {actor}; waiting for an admin's approval"
        revoked = UpstreamTool(entry.found, "pending", why, entry.findings, REVOKED)
        c.replace(revoked)
        await self._event(
            actor, "tool.upstream.revoked", f"tool:{name}.{tool}", "success", reason[:500],
            {"previous_state": entry.state, "fingerprint": entry.found.fingerprint,
             "revoked_fingerprint": entry.approved_fingerprint},
        )  # fmt: skip
        return revoked

    # --- verification ---------------------------------------------------------------

    async def _approvals(self, upstream: str) -> dict[str, UpstreamToolApproval]:
        q = select(UpstreamToolApproval).where(UpstreamToolApproval.upstream == upstream)
        async with self.db.session(None) as s:
            return {r.tool: r for r in (await s.execute(q)).scalars()}

    async def _store(
        self, upstream: str, d: Discovered, actor: str, fingerprint: str | None = None
    ) -> None:
        async with self.db.session(None) as s:
            row = await s.get(UpstreamToolApproval, (upstream, d.upstream_name))
            if row is None:
                row = UpstreamToolApproval(upstream=upstream, tool=d.upstream_name)
                s.add(row)
            row.fingerprint, row.approved_by = fingerprint or d.fingerprint, actor
            row.approved_at = datetime.now(UTC)

    async def _verify(self, c: FederatedConnector, found: list[Discovered]) -> list[UpstreamTool]:
        approvals = await self._approvals(c.name)
        previous = {e.found.local: e for e in c.entries()}
        out = []
        for d in found:
            entry = await self._judge(c, d, approvals.get(d.upstream_name))
            out.append(entry)
            before = previous.get(d.local)
            if before is None or (before.state, before.found.fingerprint) != (
                entry.state,
                d.fingerprint,
            ):
                action = "tool.upstream.discovered" if before is None else "tool.upstream.state"
                await self._event(
                    "system", action, f"tool:{c.name}.{d.local}", _OUTCOME[entry.state],
                    entry.reason[:1000],
                    {"upstream_tool": d.upstream_name, "state": entry.state,
                     "previous_state": before.state if before else None,
                     "fingerprint": d.fingerprint, "findings": list(entry.findings)},
                )  # fmt: skip
        return out

    async def _judge(
        self, c: FederatedConnector, d: Discovered, approved: UpstreamToolApproval | None
    ) -> UpstreamTool:
        if d.spec is None:
            return UpstreamTool(d, "rejected", d.reject)
        findings = tuple(await poisoning_findings(d.definition, self.guard, self.operator_tenant))
        approved_fp = approved.fingerprint if approved else None
        if approved is not None and approved_fp == REVOKED:
            # No trust on first use again, whatever the definition is now.
            why = f"approval revoked by {approved.approved_by}; waiting for an admin's approval"
            return UpstreamTool(d, "pending", why, findings, REVOKED)
        if approved is not None and approved.fingerprint == d.fingerprint:
            why = f"approved by {approved.approved_by}"
            return UpstreamTool(d, "enabled", why, findings, approved_fp)
        if findings:
            why = "possible tool poisoning, needs an admin's approval: " + "; ".join(findings)
            return UpstreamTool(d, "flagged", why, findings, approved_fp)
        if approved_fp is not None:
            why = (f"definition changed since approval ({approved_fp[:12]} -> "
                   f"{d.fingerprint[:12]}); disabled until an admin approves it again")  # fmt: skip
            return UpstreamTool(d, "changed", why, findings, approved_fp)
        if c.spec.trust_on_first_use:
            await self._store(c.name, d, TOFU)
            return UpstreamTool(d, "enabled", "trusted on first use", findings, d.fingerprint)
        return UpstreamTool(d, "pending", "new tool, waiting for an admin's approval")

    async def _event(
        self,
        actor: str,
        action: str,
        resource: str,
        outcome: Outcome,
        reason: str,
        payload: dict[str, object] | None = None,
    ) -> None:
        await self.audit.emit(
            AuditEventIn(
                tenant=self.operator_tenant, actor=actor, action=action, resource=resource,
                outcome=outcome, reason=reason, payload=dict(payload or {}),
            )
        )  # fmt: skip
