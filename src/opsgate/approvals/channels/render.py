"""Wire formats: Slack Block Kit, a Teams Adaptive Card, the generic webhook JSON."""

from __future__ import annotations

from typing import Any

from opsgate.approvals.channels.message import ApprovalMessage, clip

APPROVE = "opsgate.approve"
DENY = "opsgate.deny"
_STATUS = {
    "pending": ":hourglass_flowing_sand: waiting for approval",
    "approved": ":white_check_mark: approved, running",
    "executing": ":gear: running",
    "executed": ":white_check_mark: approved and executed",
    "failed": ":x: approved but failed",
    "denied": ":no_entry: denied",
    "expired": ":alarm_clock: expired (counts as denied)",
    "cancelled": ":leftwards_arrow_with_hook: withdrawn by the requester",
}


def slack_escape(text: str) -> str:
    """Requester-supplied text must not turn into mentions (<!channel>) or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return "```" + slack_escape(text).replace("```", "'''") + "```"


def summary(m: ApprovalMessage) -> str:
    return f"Approval {m.status}: {m.tool} ({m.gate}, zone {m.zone}) requested by {m.requester}"


def slack_blocks(m: ApprovalMessage) -> list[dict[str, Any]]:
    expires = int(m.expires_at.timestamp())
    fields = [
        f"*Requested by*\n{slack_escape(m.requester)} ({m.requester_kind})",
        f"*Zone / gate*\n{slack_escape(m.zone)} / {m.gate}",
        f"*Expires*\n<!date^{expires}^{{date_short_pretty}} {{time}}|{m.expires_at.isoformat()}>",
        "*Approvers*\n"
        + slack_escape(", ".join(m.approver_groups) or "approver role")
        + (f" ({m.required_approvals} needed)" if m.required_approvals > 1 else ""),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(f"{m.tool}", 140)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Rationale*\n" + (slack_escape(m.rationale) or "_none given_"),
            },
        },
        {"type": "section",
         "text": {"type": "mrkdwn", "text": "*Arguments*\n" + _code(m.arguments_text())}},
    ]  # fmt: skip
    if m.preview:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Preview*\n" + _code(m.preview_text())},
            }
        )
    if m.policy_reasons:
        reasons = clip("; ".join(m.policy_reasons), 2900)
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "Policy: " + slack_escape(reasons)}],
            }
        )
    state = _STATUS.get(m.status, m.status) + (f" — {slack_escape(m.note)}" if m.note else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": state}]})
    buttons: list[dict[str, Any]] = []
    if m.status == "pending":
        buttons += [
            {
                "type": "button",
                "action_id": APPROVE,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": m.id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Approve this call?"},
                    "text": {"type": "mrkdwn", "text": f"Run `{slack_escape(m.tool)}` as shown."},
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": DENY,
                "text": {"type": "plain_text", "text": "Deny"},
                "style": "danger",
                "value": m.id,
            },
        ]
    buttons.append(
        {
            "type": "button",
            "action_id": "opsgate.open",
            "text": {"type": "plain_text", "text": "Open in OpsGate"},
            "url": m.link,
        }
    )
    blocks.append({"type": "actions", "block_id": f"opsgate:{m.id}", "elements": buttons})
    return blocks


def teams_card(m: ApprovalMessage) -> dict[str, Any]:
    facts = [
        {"title": "Requested by", "value": f"{m.requester} ({m.requester_kind})"},
        {"title": "Zone / gate", "value": f"{m.zone} / {m.gate}"},
        {"title": "Approvers", "value": ", ".join(m.approver_groups) or "approver role"},
        {"title": "Expires", "value": m.expires_at.isoformat()},
        {"title": "Status", "value": m.status},
    ]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": True,
         "text": f"Approval needed: {m.tool}"},
        {"type": "FactSet", "facts": facts},
        {"type": "TextBlock", "wrap": True, "text": f"Rationale: {m.rationale or 'none given'}"},
        {"type": "TextBlock", "weight": "Bolder", "text": "Arguments"},
        {"type": "TextBlock", "wrap": True, "fontType": "Monospace", "text": m.arguments_text()},
    ]  # fmt: skip
    if m.preview:
        body += [
            {"type": "TextBlock", "weight": "Bolder", "text": "Preview"},
            {"type": "TextBlock", "wrap": True, "fontType": "Monospace", "text": m.preview_text()},
        ]
    if m.policy_reasons:
        body.append(
            {"type": "TextBlock", "wrap": True, "isSubtle": True,
             "text": "Policy: " + clip("; ".join(m.policy_reasons), 2000)}
        )  # fmt: skip
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        # Decisions are taken in OpsGate (authenticated), never from the card.
        "actions": [{"type": "Action.OpenUrl", "title": "Open in OpsGate", "url": m.link}],
    }
    return {
        "type": "message",
        "summary": summary(m),
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def webhook_body(event: str, m: ApprovalMessage) -> dict[str, Any]:
    return {"event": event, "approval": m.as_json()}
