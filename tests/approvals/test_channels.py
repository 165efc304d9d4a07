"""Approval channels over real HTTP: Slack (real slack_sdk), Teams and signed webhooks."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from pydantic import ValidationError
from slack_sdk.signature import SignatureVerifier

from opsgate.app import create_app
from opsgate.approvals.channels.notifier import ChannelNotifier
from opsgate.approvals.channels.settings import ChannelsSettings
from opsgate.approvals.channels.signing import sign, verify
from opsgate.approvals.slack_api import router as slack_router
from opsgate.audit.query import EventFilter, list_events
from opsgate.identity.principal import Principal
from opsgate.settings import Settings
from tests.conftest import AppHarness, migrated
from tests.fakes.chat_hooks import ChatFakes
from tests.fakes.server import serve
from tests.tools.fakeops import OpsConnector

BOT_TOKEN = "xoxb-1111-2222-" + "B" * 24
SIGNING_SECRET = "8f742231b10e8888abcd99yez56789d0"
TEAMS_PATH = "teams/webhookb2/SECRETPATHtoken" + "T" * 20
HOOK_SECRET = "whsec-" + "H" * 30
PUBLIC_URL = "https://opsgate.example.com"
INTERACTIONS = "/api/v1/approvals/slack/interactions"
AGENT = Principal(id="key:a1", kind="agent", tenant="default", roles=frozenset({"agent"}))
ARGS = {"namespace": "prod", "name": "api-7f9"}


@dataclass
class Env:
    base: str
    rt: Any
    ops: OpsConnector
    fakes: ChatFakes
    notifier: ChannelNotifier

    async def request(self, rationale: str = "pod stuck in CrashLoop") -> str:
        out = await self.rt.tools.call(AGENT, "k8s.delete_pod", ARGS, rationale=rationale)
        assert out.status == "pending_approval" and out.approval_id
        return str(out.approval_id)

    async def posted(self, approval_id: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for body in self.fakes.calls("chat.postMessage"):
                if approval_id in orjson.dumps(body).decode():
                    return body
            return None

        found: dict[str, Any] = await self.fakes.wait(find)
        return found

    async def click(
        self,
        approval_id: str,
        user: str = "U_ANA",
        action: str = "opsgate.approve",
        *,
        ts: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> httpx.Response:
        body, headers = signed_interaction(approval_id, user, action, ts=ts, secret=secret)
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as c:
            return await c.post(INTERACTIONS, content=body, headers=headers)

    async def events(self, prefix: str) -> list[dict[str, Any]]:
        await self.rt.audit.flush()
        rows, _ = await list_events(
            self.rt.db, "default", EventFilter(action_prefix=prefix), None, 500
        )
        return list(rows)


def interaction(approval_id: str, user: str, action: str) -> dict[str, Any]:
    """A block_actions payload as Slack sends it for a button click."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "team": {"id": "T1", "domain": "acme"},
        "api_app_id": "A1",
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": "C1"},
        "channel": {"id": "C1", "name": "ops-approvals"},
        "message": {"ts": "1700000000.000001", "text": "..."},
        "response_url": "https://hooks.slack.com/actions/T1/1/abc",
        "trigger_id": "1.2.3",
        "actions": [
            {
                "action_id": action,
                "block_id": f"opsgate:{approval_id}",
                "value": approval_id,
                "type": "button",
                "action_ts": str(time.time()),
            }
        ],
    }


def signed_interaction(
    approval_id: str, user: str, action: str, *, ts: int | None = None, secret: str
) -> tuple[bytes, dict[str, str]]:
    payload = orjson.dumps(interaction(approval_id, user, action)).decode()
    body = urlencode({"payload": payload}).encode()
    t = str(int(time.time()) if ts is None else ts)
    sig = SignatureVerifier(secret).generate_signature(timestamp=t, body=body)
    assert sig is not None
    return body, {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": t,
        "x-slack-signature": sig,
    }


def channels_settings(fake_url: str, **over: Any) -> ChannelsSettings:
    cfg: dict[str, Any] = {
        "slack": {
            "enabled": True,
            "bot_token": "secret://slack-bot",
            "signing_secret": "secret://slack-signing",
            "channel": "C1",
            "base_url": f"{fake_url}/api/",
            "team_id": "T1",
            "users": {
                "U_ANA": {
                    "principal": "ana",
                    "groups": ["sg-k8s-approvers"],
                    "roles": ["operator"],
                    "name": "Ana",
                },
                # The agent's owner mapped to the requester's id: four-eyes must still hold.
                "U_SELF": {"principal": "key:a1", "groups": ["sg-k8s-approvers"]},
            },
        },
        "teams": [{"name": "ops", "webhook_url": "secret://teams-url"}],
        "webhooks": [{"name": "bridge", "url": f"{fake_url}/hooks/bridge", "secret": "secret://hook"}],
        "allow_loopback_http": True,
        "attempts": 3,
        "backoff_seconds": 0.01,
        "timeout_seconds": 5,
    }  # fmt: skip
    cfg.update(over)
    return ChannelsSettings.model_validate(cfg)


def _with_router(app: Any) -> None:
    # The lead wires the router into create_app; include it here only if not (yet) there.
    if not any(getattr(r, "path", "") == INTERACTIONS for r in app.routes):
        app.include_router(slack_router)


@pytest.fixture
async def env(make_settings: Any, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Env]:
    caplog.set_level(logging.DEBUG)
    settings: Settings = make_settings(
        server={"public_url": PUBLIC_URL}, tools={"approval_poll_seconds": 0.2}
    )
    await migrated(settings)
    fakes = ChatFakes(bot_token=BOT_TOKEN)
    app = create_app(settings)
    _with_router(app)
    async with serve(fakes.app()) as fake_url, serve(app, lifespan="on") as base:
        rt: Any = app.state.runtime
        for name, value in {
            "slack-bot": BOT_TOKEN,
            "slack-signing": SIGNING_SECRET,
            "teams-url": f"{fake_url}/hooks/{TEAMS_PATH}",
            "hook": HOOK_SECRET,
        }.items():
            await rt.vault.put("default", name, value, actor="test")
        previous = getattr(rt, "channels", None)
        notifier = await ChannelNotifier.start(rt, channels_settings(fake_url))
        rt.channels = notifier
        try:
            yield Env(base, rt, OpsConnector.install(rt), fakes, notifier)
        finally:
            await notifier.aclose()
            rt.channels = previous


def _no_secrets(text: str) -> None:
    for secret in (BOT_TOKEN, SIGNING_SECRET, "SECRETPATHtoken", HOOK_SECRET):
        assert secret not in text


async def test_a_request_reaches_every_channel_with_details_and_a_link(env: Env) -> None:
    approval_id = await env.request(rationale="pod stuck <!channel> see <https://evil|here>")
    post = await env.posted(approval_id)
    assert post["channel"] == "C1" and "k8s.delete_pod" in post["text"]
    text = orjson.dumps(post["blocks"]).decode()
    link = f"{PUBLIC_URL}/api/v1/approvals/{approval_id}"
    assert link in text and "api-7f9" in text and "kubernetes" in text and "L2" in text
    # Requester-supplied text cannot ping the channel or smuggle a link.
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    buttons = post["blocks"][-1]["elements"]
    assert [b.get("action_id") for b in buttons] == [
        "opsgate.approve",
        "opsgate.deny",
        "opsgate.open",
    ]
    assert buttons[0]["value"] == buttons[1]["value"] == approval_id

    teams = (await env.fakes.wait(lambda: env.fakes.hits_for(TEAMS_PATH)))[0].json()
    card = teams["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in OpsGate", "url": link}]

    hook = (await env.fakes.wait(lambda: env.fakes.hits_for("bridge")))[0]
    assert verify(HOOK_SECRET.encode(), hook.body, hook.headers["x-opsgate-signature"])
    assert not verify(b"other", hook.body, hook.headers["x-opsgate-signature"])
    sent = hook.json()
    assert sent["event"] == "approval.requested"
    assert sent["approval"]["arguments"] == ARGS and sent["approval"]["link"] == link

    await env.notifier.drain()
    notified = await env.events("approval.notify")
    assert {(e["payload"]["channel"], e["outcome"]) for e in notified} == {
        ("slack", "success"),
        ("teams:ops", "success"),
        ("webhook:bridge", "success"),
    }


async def test_signed_slack_approval_decides_as_the_mapped_human_and_runs(env: Env) -> None:
    approval_id = await env.request()
    await env.posted(approval_id)
    r = await env.click(approval_id)
    assert r.status_code == 200, r.text
    req = await env.rt.held.wait("default", approval_id, 10, poll=0.05)
    assert req.status == "executed"
    assert env.ops.calls == [("k8s.delete_pod", ARGS)]
    votes = await env.events("approval.vote")
    assert [(e["actor"], e["outcome"]) for e in votes] == [("ana", "allowed")]
    # The original message is updated: first the decision, then the outcome; no buttons left.
    updates = await env.fakes.wait(
        lambda: [
            u for u in env.fakes.calls("chat.update") if "approved and executed" in orjson.dumps(u).decode()
        ]
    )  # fmt: skip
    final = orjson.dumps(updates[-1]["blocks"]).decode()
    assert "approved by ana" in final and "opsgate.approve" not in final
    first = env.fakes.calls("chat.update")[0]
    assert first["channel"] == "C1" and first["ts"] == "1700000000.000001"
    assert "Ana via Slack" in orjson.dumps(first).decode()
    # The webhook hears of the outcome too.
    settled = await env.fakes.wait(
        lambda: [
            h for h in env.fakes.hits_for("bridge")
            if h.json()["event"] == "approval.settled" and h.json()["approval"]["status"] == "executed"
        ]
    )  # fmt: skip
    assert settled


async def test_deny_via_slack(env: Env) -> None:
    approval_id = await env.request()
    await env.posted(approval_id)
    r = await env.click(approval_id, action="opsgate.deny")
    assert r.status_code == 200
    assert (await env.rt.approvals.get("default", approval_id)).status == "denied"
    await env.fakes.wait(
        lambda: any("denied by" in orjson.dumps(u).decode() for u in env.fakes.calls("chat.update"))
    )  # fmt: skip
    assert env.ops.calls == []


@pytest.mark.parametrize("case", ["bad_signature", "stale", "missing_headers", "future"])
async def test_unverified_interactions_get_401_and_change_nothing(env: Env, case: str) -> None:
    approval_id = await env.request()
    if case == "bad_signature":
        r = await env.click(approval_id, secret="not-the-signing-secret")
    elif case == "stale":
        r = await env.click(approval_id, ts=int(time.time()) - 6 * 60)
    elif case == "future":
        r = await env.click(approval_id, ts=int(time.time()) + 6 * 60)
    else:
        body, _ = signed_interaction(approval_id, "U_ANA", "opsgate.approve", secret=SIGNING_SECRET)
        async with httpx.AsyncClient(base_url=env.base) as c:
            r = await c.post(INTERACTIONS, content=body)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await env.rt.approvals.get("default", approval_id)).status == "pending"
    assert await env.events("approval.vote") == []
    assert env.fakes.calls("chat.update") == [] and env.fakes.calls("chat.postEphemeral") == []
    refused = await env.events("approval.slack_refused")
    assert refused and refused[-1]["outcome"] == "denied"


async def test_a_replayed_interaction_is_refused(env: Env) -> None:
    approval_id = await env.request()
    body, headers = signed_interaction(approval_id, "U_ANA", "opsgate.deny", secret=SIGNING_SECRET)
    async with httpx.AsyncClient(base_url=env.base) as c:
        first = await c.post(INTERACTIONS, content=body, headers=headers)
        again = await c.post(INTERACTIONS, content=body, headers=headers)
    assert first.status_code == 200 and again.status_code == 401
    assert len(await env.events("approval.vote")) == 1


async def test_unmapped_slack_user_is_refused_with_an_ephemeral_reply(env: Env) -> None:
    approval_id = await env.request()
    r = await env.click(approval_id, user="U_EVE")
    assert r.status_code == 200
    eph = (await env.fakes.wait(lambda: env.fakes.calls("chat.postEphemeral")))[0]
    assert eph["user"] == "U_EVE" and eph["channel"] == "C1"
    assert "not mapped" in eph["text"]
    assert (await env.rt.approvals.get("default", approval_id)).status == "pending"
    refused = await env.events("approval.slack_refused")
    assert [(e["actor"], e["reason"]) for e in refused] == [("slack:U_EVE", "unmapped Slack user")]


async def test_the_requester_cannot_approve_their_own_request_from_slack(env: Env) -> None:
    approval_id = await env.request()
    r = await env.click(approval_id, user="U_SELF")
    assert r.status_code == 200
    eph = (await env.fakes.wait(lambda: env.fakes.calls("chat.postEphemeral")))[0]
    assert eph["user"] == "U_SELF" and "requested this call yourself" in eph["text"]
    assert (await env.rt.approvals.get("default", approval_id)).status == "pending"
    assert env.ops.calls == []


async def test_a_second_click_after_the_decision_gets_a_clear_reply(env: Env) -> None:
    approval_id = await env.request()
    assert (await env.click(approval_id, action="opsgate.deny")).status_code == 200
    assert (await env.click(approval_id)).status_code == 200
    eph = (await env.fakes.wait(lambda: env.fakes.calls("chat.postEphemeral")))[0]
    assert "already denied" in eph["text"]
    assert (await env.rt.approvals.get("default", approval_id)).status == "denied"


async def test_a_failing_receiver_is_retried_then_given_up_and_audited(env: Env) -> None:
    env.fakes.fail["bridge"] = 100
    env.fakes.fail[TEAMS_PATH] = 1  # fails once, then takes it
    start = time.monotonic()
    approval_id = await env.request()
    assert time.monotonic() - start < 5  # the request did not wait for the channels
    await env.posted(approval_id)
    await env.notifier.drain()
    assert len(env.fakes.hits_for("bridge")) == 3  # attempts=3
    assert len(env.fakes.hits_for(TEAMS_PATH)) == 2
    notified = {e["payload"]["channel"]: e for e in await env.events("approval.notify")}
    bridge = notified["webhook:bridge"]
    assert bridge["outcome"] == "failure" and bridge["payload"]["attempts"] == 3
    assert bridge["payload"]["http_status"] == 503
    assert notified["teams:ops"]["outcome"] == "success"
    assert notified["teams:ops"]["payload"]["attempts"] == 2
    assert notified["slack"]["outcome"] == "success"


async def test_slack_api_errors_are_retried(env: Env) -> None:
    env.fakes.slack_fail["chat.postMessage"] = 1
    approval_id = await env.request()
    await env.posted(approval_id)
    await env.notifier.drain()
    slack = [e for e in await env.events("approval.notify") if e["payload"]["channel"] == "slack"]
    assert slack[0]["outcome"] == "success" and slack[0]["payload"]["attempts"] == 2


async def test_no_secret_reaches_logs_audit_or_messages(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.fakes.fail["bridge"] = 100
    approval_id = await env.request()
    await env.posted(approval_id)
    assert (await env.click(approval_id, user="U_EVE")).status_code == 200
    assert (await env.click(approval_id, secret="wrong")).status_code == 401
    assert (await env.click(approval_id)).status_code == 200
    await env.rt.held.wait("default", approval_id, 10, poll=0.05)
    await env.fakes.wait(lambda: len(env.fakes.calls("chat.update")) >= 2)
    await env.notifier.drain()
    await env.rt.audit.flush()
    rows, _ = await list_events(env.rt.db, "default", EventFilter(), None, 1000)
    assert any(r["action"] == "approval.notify" and r["outcome"] == "failure" for r in rows)
    _no_secrets(orjson.dumps(rows).decode())
    _no_secrets(caplog.text)
    _no_secrets("".join(str(r.__dict__) for r in caplog.records))
    _no_secrets(orjson.dumps(env.fakes.slack_calls).decode())
    _no_secrets(b"".join(h.body for h in env.fakes.hits).decode())


async def test_a_teams_url_that_is_not_https_is_never_called(env: Env) -> None:
    await env.rt.vault.put("default", "teams-url", "http://169.254.169.254/latest", actor="t")
    approval_id = await env.request()
    await env.posted(approval_id)
    await env.notifier.drain()
    teams = [
        e for e in await env.events("approval.notify") if e["payload"]["channel"] == "teams:ops"
    ]
    assert teams[0]["outcome"] == "failure" and teams[0]["payload"]["attempts"] == 1
    assert "not allowed" in teams[0]["reason"] and "169.254" not in teams[0]["reason"]


async def test_interactions_without_slack_configured_answer_401(harness: AppHarness) -> None:
    _with_router(harness.app)
    body, headers = signed_interaction("x", "U_ANA", "opsgate.approve", secret=SIGNING_SECRET)
    r = await harness.client.post(INTERACTIONS, content=body, headers=headers)
    assert r.status_code == 401


def test_settings_refuse_literal_secrets_and_plain_http() -> None:
    with pytest.raises(ValidationError, match="vault reference"):
        channels_settings(
            "https://x", webhooks=[{"name": "w", "url": "https://x", "secret": "raw"}]
        )
    with pytest.raises(ValidationError, match="vault reference"):
        ChannelsSettings.model_validate(
            {"slack": {"enabled": True, "bot_token": "xoxb-raw", "signing_secret": "secret://s",
                       "channel": "C1"}}
        )  # fmt: skip
    hook = [{"name": "w", "url": "http://127.0.0.1:9/h", "secret": "secret://h"}]
    with pytest.raises(ValidationError, match="https"):
        ChannelsSettings.model_validate({"webhooks": hook})
    assert ChannelsSettings.model_validate({"webhooks": hook, "allow_loopback_http": True})
    remote = [{"name": "w", "url": "http://hooks.example.com/h", "secret": "secret://h"}]
    with pytest.raises(ValidationError, match="https"):
        ChannelsSettings.model_validate({"webhooks": remote, "allow_loopback_http": True})
    with pytest.raises(ValidationError, match="credentials"):
        ChannelsSettings.model_validate(
            {"webhooks": [{"name": "w", "url": "https://u:p@x/h", "secret": "secret://h"}]}
        )
    with pytest.raises(ValidationError, match="extra"):
        ChannelsSettings.model_validate({"slak": {}})


def test_the_verification_snippet_in_the_docs_works_when_pasted() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "approval-channels.md").read_text()
    code = re.search(r"<!-- verify-snippet -->\s*```python\n(.*?)```", doc, re.S)
    assert code is not None
    ns: dict[str, Any] = {}
    exec(compile(code.group(1), "approval-channels.md", "exec"), ns)  # noqa: S102 - our own doc
    body = b'{"event":"approval.requested"}'
    header = sign(b"s3cret", body)
    assert ns["verify_opsgate_signature"](b"s3cret", body, header) is True
    assert ns["verify_opsgate_signature"](b"s3cret", body + b" ", header) is False
    old = sign(b"s3cret", body, int(time.time()) - 3600)
    assert ns["verify_opsgate_signature"](b"s3cret", body, old) is False


async def test_messages_carry_guard_redacted_text_only(env: Env) -> None:
    leaked = "ghp_" + "Z" * 36
    out = await env.rt.tools.call(
        AGENT,
        "k8s.delete_pod",
        {**ARGS, "note": "ping ana@example.com"},
        rationale=f"the deploy token {leaked} is stuck",
    )
    assert out.approval_id
    post = orjson.dumps(await env.posted(out.approval_id)).decode()
    hook = (await env.fakes.wait(lambda: env.fakes.hits_for("bridge")))[0].body.decode()
    teams = (await env.fakes.wait(lambda: env.fakes.hits_for(TEAMS_PATH)))[0].body.decode()
    for text in (post, hook, teams):
        assert leaked not in text and "ana@example.com" not in text
        assert "api-7f9" in text  # the rest of the arguments is shown as is
