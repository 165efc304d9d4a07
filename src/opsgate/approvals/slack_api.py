"""Slack interactivity: Approve / Deny buttons decide as the mapped human, never as the bot.

Authenticated by Slack's request signature (X-Slack-Signature over the raw body with the
app's signing secret), not by an OpsGate credential: anything unsigned, badly signed, stale
(> 5 min) or replayed gets 401 and changes nothing. The Slack user must be mapped to an
OpsGate principal in configuration; the decision then goes through ApprovalService.decide
with every rule it enforces (four-eyes, approver groups, expiry, single decision).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, BackgroundTasks, Request, Response

from opsgate.approvals.channels.message import ApprovalMessage, build_message
from opsgate.approvals.channels.notifier import ChannelNotifier
from opsgate.approvals.channels.render import APPROVE, DENY
from opsgate.approvals.channels.settings import SlackUser
from opsgate.approvals.channels.slack import SlackChannel
from opsgate.audit.schemas import AuditEventIn
from opsgate.deps import RuntimeDep
from opsgate.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthenticated
from opsgate.identity.principal import Principal
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.approvals.slack")
router = APIRouter(prefix="/api/v1/approvals/slack", tags=["approvals"])
MAX_SKEW_SECONDS = 300

_CONFLICTS = {
    "own_request": "You requested this call yourself: someone else has to decide it.",
    "expired": "This request has expired (expiry counts as denied).",
    "already_voted": "You already decided this request.",
    "raced": "Someone else decided this request at the same moment.",
}


def _slack(rt: Any) -> tuple[ChannelNotifier, SlackChannel]:
    notifier = getattr(rt, "channels", None)
    if not isinstance(notifier, ChannelNotifier) or notifier.slack is None:
        # 401, not 404: the route exists; without Slack configured nothing can be signed.
        raise Unauthenticated("Slack interactions are not configured")
    return notifier, notifier.slack


async def _refuse(rt: Any, slack: SlackChannel, actor: str, resource: str, reason: str) -> None:
    await rt.audit.emit(
        AuditEventIn(
            tenant=slack.tenant,
            actor=actor,
            action="approval.slack_refused",
            resource=resource,
            outcome="denied",
            reason=reason[:200],
        )
    )


async def _verified_body(request: Request, rt: Any, slack: SlackChannel) -> bytes:
    body = await request.body()
    ts = request.headers.get("x-slack-request-timestamp", "")
    sig = request.headers.get("x-slack-signature", "")
    problem = ""
    if not ts or not sig:
        problem = "missing Slack signature headers"
    elif not ts.isdigit() or abs(time.time() - int(ts)) > MAX_SKEW_SECONDS:
        problem = "stale or invalid Slack request timestamp"
    elif not (await slack.verifier()).is_valid(body, ts, sig):
        problem = "invalid Slack signature"
    elif not slack.first_use(sig):
        problem = "replayed Slack request"
    if problem:
        await _refuse(rt, slack, "slack:unknown", "slack:interactions", problem)
        raise Unauthenticated(problem)
    return body


def _payload(body: bytes) -> dict[str, Any]:
    try:
        raw = parse_qs(body.decode(), strict_parsing=True)["payload"][0]
        payload = orjson.loads(raw)
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        raise BadRequest("expected a form field `payload` holding JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object")
    return payload


def _principal(slack: SlackChannel, user_id: str, user: SlackUser) -> Principal:
    return Principal(
        id=user.principal,
        kind="user",
        tenant=slack.tenant,
        groups=frozenset(user.groups),
        roles=frozenset(user.roles),
        auth="slack",
        credential_id=f"slack:{user_id}",
        name=user.name,
    )


@router.post("/interactions", status_code=200, response_class=Response)
async def approvals_slack_interactions(
    request: Request, rt: RuntimeDep, background: BackgroundTasks
) -> Response:
    """Slack's interactivity request URL (block_actions from the Approve / Deny buttons)."""
    notifier, slack = _slack(rt)
    payload = _payload(await _verified_body(request, rt, slack))
    actions = payload.get("actions") or []
    action = actions[0] if isinstance(actions, list) and actions else {}
    if payload.get("type") != "block_actions" or action.get("action_id") not in (APPROVE, DENY):
        return Response(status_code=200)  # e.g. the "Open in OpsGate" link button
    user_id = str((payload.get("user") or {}).get("id") or "")
    container = payload.get("container") or {}
    channel = str(container.get("channel_id") or (payload.get("channel") or {}).get("id") or "")
    ts = str(container.get("message_ts") or (payload.get("message") or {}).get("ts") or "")
    approval_id = str(action.get("value") or "")
    resource = f"approval:{approval_id}"

    def reply(text: str) -> Response:
        background.add_task(_ephemeral, slack, channel, user_id, text)
        return Response(status_code=200)

    team = str((payload.get("team") or {}).get("id") or "")
    if slack.cfg.team_id and team != slack.cfg.team_id:
        await _refuse(rt, slack, f"slack:{user_id}", resource, f"other Slack workspace {team}")
        return reply("This Slack workspace may not decide OpsGate approvals.")
    user = slack.cfg.users.get(user_id)
    if user is None:
        await _refuse(rt, slack, f"slack:{user_id}", resource, "unmapped Slack user")
        return reply(
            "Your Slack account is not mapped to an OpsGate approver, so it cannot decide. "
            "Ask an OpsGate admin to add it, or decide in OpsGate."
        )
    principal = _principal(slack, user_id, user)
    approve = action.get("action_id") == APPROVE
    try:
        req = await rt.approvals.decide(
            principal, approval_id, approve=approve, reason=f"via Slack ({user_id})"
        )
    except Conflict as exc:
        await _refuse(rt, slack, principal.id, resource, f"{exc.code}: {exc.detail}")
        return reply(_CONFLICTS.get(exc.code, f"Not possible: {exc.detail}."))
    except Forbidden as exc:
        await _refuse(rt, slack, principal.id, resource, f"forbidden: {exc.detail}")
        return reply(f"You may not decide this request: {exc.detail}.")
    except NotFound:
        await _refuse(rt, slack, principal.id, resource, "no such approval request")
        return reply("This approval request no longer exists.")
    verb = "approved" if approve else "denied"
    note = f"{verb} by {user.name or principal.id} via Slack"
    if req.status == "pending":
        note += f" (more approvals needed: {req.required_approvals} in all)"
    message = await build_message(req, notifier.guard, notifier.public_url, note=note)
    if channel and ts:
        background.add_task(_update, slack, channel, ts, message)
    return Response(status_code=200)


async def _ephemeral(slack: SlackChannel, channel: str, user: str, text: str) -> None:
    if not channel or not user:
        return
    try:
        await asyncio.wait_for(slack.ephemeral(channel, user, text), slack.timeout)
    except Exception as exc:  # the edge: the decision stands whatever Slack answers
        log.warning(
            "slack ephemeral reply failed", reason=getattr(exc, "reason", type(exc).__name__)
        )


async def _update(slack: SlackChannel, channel: str, ts: str, message: ApprovalMessage) -> None:
    slack.posted[message.id] = (channel, ts)
    try:
        await asyncio.wait_for(slack.update(channel, ts, message), slack.timeout)
    except Exception as exc:  # the edge: the decision stands whatever Slack answers
        log.warning(
            "slack message update failed", reason=getattr(exc, "reason", type(exc).__name__)
        )
