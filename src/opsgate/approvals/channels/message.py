"""What a notification says about an approval request, before any channel formats it.

Arguments, rationale and preview go through the guard's redaction (when the guard runs) and
a key-name mask, so a message never carries a secret even when a request holds one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from opsgate.approvals.models import ApprovalRequest, ApprovalVote
from opsgate.approvals.service import arguments_of
from opsgate.db.engine import Database
from opsgate.guard.findings import ScanContext
from opsgate.guard.service import GuardService

# Values under keys like these are masked whatever the guard says.
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|private", re.I)
MASK = "[redacted]"
MAX_TEXT = 2500


@dataclass(frozen=True)
class ApprovalMessage:
    tenant: str
    id: str
    status: str
    tool: str
    zone: str
    gate: str
    requester: str
    requester_kind: str
    rationale: str
    arguments: dict[str, Any]
    preview: dict[str, Any] | None
    policy_reasons: list[str]
    approver_groups: list[str]
    required_approvals: int
    created_at: datetime
    expires_at: datetime
    link: str
    # Set on updates: who decided (principal id) and how, e.g. "approved by ana via Slack".
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def arguments_text(self) -> str:
        return clip(orjson.dumps(self.arguments, option=orjson.OPT_INDENT_2).decode())

    def preview_text(self) -> str:
        if not self.preview:
            return ""
        return clip(orjson.dumps(self.preview, option=orjson.OPT_INDENT_2).decode())

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "id": self.id,
            "status": self.status,
            "tool": self.tool,
            "zone": self.zone,
            "gate": self.gate,
            "requester": self.requester,
            "requester_kind": self.requester_kind,
            "rationale": self.rationale,
            "arguments": self.arguments,
            "preview": self.preview,
            "policy_reasons": self.policy_reasons,
            "approver_groups": self.approver_groups,
            "required_approvals": self.required_approvals,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "link": self.link,
        }


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mask_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: MASK if isinstance(k, str) and _SECRET_KEY.search(k) else mask_keys(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [mask_keys(v) for v in obj]
    return obj


async def decision_note(db: Database, req: ApprovalRequest) -> str:
    """Who decided, for updated messages: "approved by ana, bob" / "denied by carol"."""
    if req.status == "pending":
        return ""
    async with db.session(req.tenant_id) as s:
        rows = (
            await s.execute(
                select(ApprovalVote.approver, ApprovalVote.decision)
                .where(ApprovalVote.approval_id == req.id)
                .order_by(ApprovalVote.created_at)
            )
        ).all()
    parts = []
    for decision, verb in (("approve", "approved"), ("deny", "denied")):
        who = [str(a) for a, d in rows if d == decision]
        if who:
            parts.append(f"{verb} by {', '.join(who)}")
    return "; ".join(parts)


def approval_link(public_url: str | None, approval_id: str) -> str:
    base = (public_url or "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/api/v1/approvals/{approval_id}"


async def build_message(
    req: ApprovalRequest, guard: GuardService | None, public_url: str | None, note: str = ""
) -> ApprovalMessage:
    content: dict[str, Any] = {
        "arguments": arguments_of(req),
        "rationale": req.rationale,
        "preview": req.preview,
        "reasons": list(req.policy_reasons),
    }
    if guard is not None:
        ctx = ScanContext(direction="tool_args", tenant=req.tenant_id)
        _scan, content, _ = await guard.redact_json(req.tenant_id, content, ctx)
    content = mask_keys(content)
    expires = req.expires_at
    return ApprovalMessage(
        tenant=req.tenant_id,
        id=req.id,
        status=req.status,
        tool=req.tool,
        zone=req.zone,
        gate=req.gate,
        requester=req.requester,
        requester_kind=req.requester_kind,
        rationale=clip(str(content.get("rationale") or ""), 1000),
        arguments=dict(content.get("arguments") or {}),
        preview=content.get("preview") or None,
        policy_reasons=[str(r) for r in content.get("reasons") or []],
        approver_groups=list(req.approver_groups),
        required_approvals=req.required_approvals,
        created_at=req.created_at,
        expires_at=expires,
        link=approval_link(public_url, req.id),
        note=note,
    )
