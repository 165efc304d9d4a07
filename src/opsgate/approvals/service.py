"""The human-in-the-loop gate's state machine.

pending -> approved (N approvals from the approver groups) -> executing (single use, claimed
atomically) -> executed | failed; pending -> denied (any deny) | expired (expiry = deny) |
cancelled (withdrawn by its requester).
An approval binds to HMAC(tool, exact arguments, requester, policy revision): executing with
anything else is refused. The requester can never approve; agents never approve; after
`escalate_at`, the escalation groups may decide too. State lives in the database, so waits
survive restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, update

from opsgate.approvals.models import ApprovalRequest, ApprovalVote
from opsgate.audit.base import Auditor
from opsgate.audit.canonical import canonical
from opsgate.audit.schemas import AuditEventIn, Outcome
from opsgate.bus.base import EventBus
from opsgate.db.engine import Database
from opsgate.errors import Conflict, Forbidden, NotFound
from opsgate.identity.principal import Principal
from opsgate.policy.service import PolicyService

TERMINAL = {"denied", "expired", "executed", "failed", "cancelled"}


@dataclass(frozen=True)
class NewApproval:
    tool: str
    arguments: dict[str, Any]
    rationale: str
    zone: str
    gate: str
    policy_revision: str
    policy_reasons: list[str]
    approver_groups: list[str]
    required_approvals: int = 1
    escalation_groups: tuple[str, ...] = ()
    escalate_after: timedelta | None = None
    ttl: timedelta = timedelta(hours=24)
    preview: dict[str, Any] | None = None


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


class ApprovalService:
    def __init__(
        self, db: Database, audit: Auditor, bus: EventBus, policy: PolicyService, key: bytes
    ) -> None:
        self.db, self.audit, self.bus, self.policy = db, audit, bus, policy
        self._key = hashlib.sha256(b"opsgate-approval-binding" + key).digest()

    def binding(self, tool: str, arguments: dict[str, Any], requester: str, revision: str) -> str:
        msg = canonical(
            {
                "tool": tool,
                "arguments": arguments,
                "requester": requester,
                "policy_revision": revision,
            }
        )
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    async def request(self, requester: Principal, spec: NewApproval) -> ApprovalRequest:
        now = datetime.now(UTC)
        req = ApprovalRequest(
            tenant_id=requester.tenant,
            id=str(uuid.uuid4()),
            tool=spec.tool,
            arguments=canonical(spec.arguments).decode(),
            requester=requester.id,
            requester_kind=requester.kind,
            rationale=spec.rationale[:4000],
            zone=spec.zone,
            gate=spec.gate,
            policy_revision=spec.policy_revision,
            policy_reasons=list(spec.policy_reasons),
            preview=spec.preview,
            approver_groups=sorted(set(spec.approver_groups)),
            escalation_groups=sorted(set(spec.escalation_groups)),
            required_approvals=max(1, spec.required_approvals),
            digest=self.binding(spec.tool, spec.arguments, requester.id, spec.policy_revision),
            status="pending",
            created_at=now,
            escalate_at=now + spec.escalate_after if spec.escalate_after else None,
            expires_at=now + spec.ttl,
            outcome="",
            requester_principal=snapshot(requester),
        )
        async with self.db.session(requester.tenant) as s:
            s.add(req)
        await self._event(req, requester.id, "approval.requested", "pending", spec.rationale[:200])
        return req

    async def get(self, tenant: str, approval_id: str) -> ApprovalRequest:
        async with self.db.session(tenant) as s:
            req = await s.get(ApprovalRequest, (tenant, approval_id))
        if req is None:
            raise NotFound(f"no approval request {approval_id!r}")
        return req

    async def list_requests(
        self, tenant: str, status: str | None = None, limit: int = 100
    ) -> list[ApprovalRequest]:
        await self.expire_due(tenant)
        q = select(ApprovalRequest).order_by(ApprovalRequest.created_at.desc()).limit(limit)
        if status:
            q = q.where(ApprovalRequest.status == status)
        async with self.db.session(tenant) as s:
            return list((await s.execute(q)).scalars())

    async def decide(
        self, approver: Principal, approval_id: str, *, approve: bool, reason: str = ""
    ) -> ApprovalRequest:
        req = await self.get(approver.tenant, approval_id)
        now = datetime.now(UTC)
        if req.status == "pending" and _aware(req.expires_at) <= now:  # type: ignore[operator]
            await self._expire(req)
            raise Conflict("approval request expired (expiry counts as denied)", code="expired")
        if req.status != "pending":
            raise Conflict(
                f"approval request is already {req.status}", code=f"already_{req.status}"
            )
        if approver.id == req.requester:
            raise Conflict("the requester cannot decide their own request", code="own_request")
        groups = list(req.approver_groups)
        escalate_at = _aware(req.escalate_at)
        if escalate_at is not None and escalate_at <= now:
            groups += list(req.escalation_groups)
        decision = await self.policy.decide(
            approver,
            "approval.decide",
            {
                "kind": "approval",
                "name": req.id,
                "requester": req.requester,
                "approver_groups": groups,
                "zone": req.zone,
                "gate": req.gate,
            },
        )
        if not decision.allow:
            raise Forbidden("; ".join(decision.reasons))
        return await self._vote(req, approver, approve, reason, now)

    async def _vote(
        self, req: ApprovalRequest, approver: Principal, approve: bool, reason: str, now: datetime
    ) -> ApprovalRequest:
        tenant = req.tenant_id
        async with self.db.session(tenant) as s:
            if await s.get(ApprovalVote, (tenant, req.id, approver.id)) is not None:
                raise Conflict("you already decided this request", code="already_voted")
            s.add(
                ApprovalVote(
                    tenant_id=tenant,
                    approval_id=req.id,
                    approver=approver.id,
                    decision="approve" if approve else "deny",
                    reason=reason[:2000],
                )
            )
            await s.flush()
            approvals = await s.scalar(
                select(func.count())
                .select_from(ApprovalVote)
                .where(ApprovalVote.approval_id == req.id, ApprovalVote.decision == "approve")
            )
            new_status = (
                "denied"
                if not approve
                else ("approved" if (approvals or 0) >= req.required_approvals else "pending")
            )
            if new_status != "pending":
                # Conditional update: a concurrent decision cannot flip a decided request.
                res = await s.execute(
                    update(ApprovalRequest)
                    .where(ApprovalRequest.id == req.id, ApprovalRequest.status == "pending")
                    .values(status=new_status, decided_at=now)
                )
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    raise Conflict("approval request was decided concurrently", code="raced")
        outcome: Outcome = "allowed" if approve else "denied"
        await self._event(req, approver.id, "approval.vote", outcome, reason[:200])
        updated = await self.get(tenant, req.id)
        if updated.status != "pending":
            await self._event(
                updated, approver.id, f"approval.{updated.status}", outcome, reason[:200]
            )
            if updated.status == "denied":
                await self._settled(tenant, req.id, "denied")
        return updated

    async def withdraw(self, requester: Principal, approval_id: str, reason: str = "") -> bool:
        """The requester takes back a request nobody has decided yet (pending -> cancelled).

        Returns False, changing nothing, once it is decided, expired or running: withdrawing
        is a request, and an approved operation is not stopped by it. Only the requester may
        withdraw; anyone else is told it does not exist.
        """
        req = await self.get(requester.tenant, approval_id)
        if req.requester != requester.id:
            raise NotFound(f"no approval request {approval_id!r}")
        async with self.db.session(requester.tenant) as s:
            res = await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == approval_id, ApprovalRequest.status == "pending")
                .values(status="cancelled", decided_at=datetime.now(UTC), outcome="withdrawn")
            )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return False
        await self._event(req, requester.id, "approval.withdrawn", "denied", reason[:200])
        await self._settled(requester.tenant, approval_id, "cancelled")
        return True

    async def claim(
        self,
        tenant: str,
        approval_id: str,
        tool: str,
        arguments: dict[str, Any],
        requester: str,
        policy_revision: str,
    ) -> ApprovalRequest:
        """Take an approved request for execution, exactly once, if it binds to this call."""
        req = await self.get(tenant, approval_id)
        digest = self.binding(tool, arguments, requester, policy_revision)
        if not hmac.compare_digest(digest, req.digest):
            await self._event(
                req,
                requester,
                "approval.binding_mismatch",
                "denied",
                "execution differs from what was approved",
            )
            raise Conflict("this call differs from what was approved", code="binding_mismatch")
        async with self.db.session(tenant) as s:
            res = await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == approval_id, ApprovalRequest.status == "approved")
                .values(status="executing", executed_at=datetime.now(UTC))
            )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"approval request is {req.status}, not approved", code=f"not_approved_{req.status}"
            )
        return await self.get(tenant, approval_id)

    async def complete(
        self,
        tenant: str,
        approval_id: str,
        *,
        ok: bool,
        outcome: str,
        result: dict[str, Any] | None = None,
    ) -> None:
        status = "executed" if ok else "failed"
        async with self.db.session(tenant) as s:
            res = await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == approval_id, ApprovalRequest.status == "executing")
                .values(status=status, outcome=outcome[:2000], result=result)
            )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            await self._settled(tenant, approval_id, status)

    async def _settled(self, tenant: str, approval_id: str, status: str) -> None:
        """One topic for every terminal transition: what held calls wait on."""
        await self.bus.publish(
            "approval.settled", {"tenant": tenant, "id": approval_id, "status": status}
        )

    async def fail_interrupted(self, tenant: str, older_than: timedelta) -> int:
        """Executions that never finished (the process died mid-call) end as failed.

        They are never run again: whether the operation took effect is unknown, and running
        it twice is worse than asking a person to look.
        """
        cutoff = datetime.now(UTC) - older_than
        async with self.db.session(tenant) as s:
            ids = list(
                (
                    await s.execute(
                        select(ApprovalRequest.id).where(
                            ApprovalRequest.status == "executing",
                            ApprovalRequest.executed_at <= cutoff,
                        )
                    )
                ).scalars()
            )
        for approval_id in ids:
            async with self.db.session(tenant) as s:
                await s.execute(
                    update(ApprovalRequest)
                    .where(ApprovalRequest.id == approval_id, ApprovalRequest.status == "executing")
                    .values(status="failed", outcome="interrupted: outcome unknown, check it")
                )
            await self._settled(tenant, approval_id, "failed")
        return len(ids)

    async def abandon(self, tenant: str, approval_id: str, reason: str) -> None:
        """An approved request that may no longer run (re-authorisation failed): failed."""
        async with self.db.session(tenant) as s:
            res = await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == approval_id, ApprovalRequest.status == "approved")
                .values(status="failed", outcome=f"not executed: {reason}"[:2000])
            )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            req = await self.get(tenant, approval_id)
            await self._event(req, "system", "approval.abandoned", "denied", reason[:200])
            await self._settled(tenant, approval_id, "failed")

    async def approved_ids(self, tenant: str) -> list[str]:
        async with self.db.session(tenant) as s:
            q = select(ApprovalRequest.id).where(ApprovalRequest.status == "approved")
            return list((await s.execute(q)).scalars())

    async def expire_due(self, tenant: str) -> int:
        now = datetime.now(UTC)
        async with self.db.session(tenant) as s:
            due = list(
                (
                    await s.execute(
                        select(ApprovalRequest).where(
                            ApprovalRequest.status == "pending", ApprovalRequest.expires_at <= now
                        )
                    )
                ).scalars()
            )
        for req in due:
            await self._expire(req)
        return len(due)

    async def _expire(self, req: ApprovalRequest) -> None:
        async with self.db.session(req.tenant_id) as s:
            res = await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == req.id, ApprovalRequest.status == "pending")
                .values(status="expired", decided_at=datetime.now(UTC))
            )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            await self._event(req, "system", "approval.expired", "denied", "expired")
            await self._settled(req.tenant_id, req.id, "expired")

    async def _event(
        self, req: ApprovalRequest, actor: str, action: str, outcome: Outcome, reason: str
    ) -> None:
        await self.audit.emit(
            AuditEventIn(
                tenant=req.tenant_id,
                actor=actor,
                action=action,
                resource=f"approval:{req.id}",
                outcome=outcome,
                reason=reason,
                payload={
                    "tool": req.tool,
                    "zone": req.zone,
                    "gate": req.gate,
                    "requester": req.requester,
                    "digest": req.digest,
                },
            )
        )
        await self.bus.publish(action, {"tenant": req.tenant_id, "id": req.id, "tool": req.tool})


def snapshot(p: Principal) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "tenant": p.tenant,
        "groups": sorted(p.groups),
        "roles": sorted(p.roles),
        "auth": p.auth,
        "credential_id": p.credential_id,
        "scopes": sorted(p.scopes),
        "name": p.name,
    }


def principal_of(req: ApprovalRequest) -> Principal | None:
    """The requester as authenticated when asking (None for requests from before 0002)."""
    d = req.requester_principal
    if not d:
        return None
    return Principal(
        id=str(d["id"]),
        kind=d["kind"],  # type: ignore[arg-type]
        tenant=str(d["tenant"]),
        groups=frozenset(d.get("groups") or ()),  # type: ignore[call-overload]
        roles=frozenset(d.get("roles") or ()),  # type: ignore[call-overload]
        auth=str(d.get("auth", "api_key")),
        credential_id=d.get("credential_id"),  # type: ignore[arg-type]
        scopes=frozenset(d.get("scopes") or ()),  # type: ignore[call-overload]
        name=str(d.get("name", "")),
    )


def arguments_of(req: ApprovalRequest) -> dict[str, Any]:
    value = orjson.loads(req.arguments)
    assert isinstance(value, dict)
    return value
