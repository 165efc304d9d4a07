"""The approval state machine through the service and the HTTP inbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from opsgate.approvals.models import ApprovalRequest
from opsgate.approvals.service import ApprovalService, NewApproval
from opsgate.errors import Conflict, Forbidden
from opsgate.identity.principal import Principal
from tests.conftest import AppHarness
from tests.tools.fakeops import APPROVER

AGENT = Principal(id="key:agent1", kind="agent", tenant="default", roles=frozenset({"agent"}))
ANA = APPROVER  # a human in the approver group of the fake tools' zone
BEN = Principal(
    id="ben",
    kind="user",
    tenant="default",
    groups=frozenset({"sg-k8s-approvers"}),
    roles=frozenset({"operator"}),
)
CAROL = Principal(
    id="carol",
    kind="user",
    tenant="default",
    groups=frozenset({"sg-oncall-leads"}),
    roles=frozenset({"operator"}),
)
ARGS = {"namespace": "prod", "deployment": "api", "replicas": 6}


def _spec(**kw: Any) -> NewApproval:
    base: dict[str, Any] = dict(
        tool="k8s.scale_deployment",
        arguments=ARGS,
        rationale="p99 latency above SLO",
        zone="kubernetes",
        gate="L2",
        policy_revision="rev1",
        policy_reasons=["destructive in prod"],
        approver_groups=["sg-k8s-approvers"],
        preview={"current": 3, "desired": 6},
    )
    base.update(kw)
    return NewApproval(**base)


def _svc(h: AppHarness) -> ApprovalService:
    svc: ApprovalService = h.runtime.approvals
    return svc


async def test_approve_then_execute_exactly_once(harness: AppHarness) -> None:
    svc = _svc(harness)
    req = await svc.request(AGENT, _spec())
    assert req.status == "pending"
    done = await svc.decide(ANA, req.id, approve=True, reason="looks right")
    assert done.status == "approved"
    claimed = await svc.claim("default", req.id, "k8s.scale_deployment", ARGS, AGENT.id, "rev1")
    assert claimed.status == "executing"
    with pytest.raises(Conflict) as ei:
        await svc.claim("default", req.id, "k8s.scale_deployment", ARGS, AGENT.id, "rev1")
    assert ei.value.code == "not_approved_executing"
    await svc.complete("default", req.id, ok=True, outcome="scaled 3 -> 6")
    assert (await svc.get("default", req.id)).status == "executed"


async def test_concurrent_claims_execute_once(harness: AppHarness) -> None:
    svc = _svc(harness)
    req = await svc.request(AGENT, _spec())
    await svc.decide(ANA, req.id, approve=True)
    results = await asyncio.gather(
        *(
            svc.claim("default", req.id, "k8s.scale_deployment", ARGS, AGENT.id, "rev1")
            for _ in range(8)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1


@pytest.mark.parametrize(
    ("tool", "args", "requester", "revision"),
    [
        ("k8s.scale_deployment", {**ARGS, "replicas": 60}, AGENT.id, "rev1"),
        ("k8s.delete_pod", ARGS, AGENT.id, "rev1"),
        ("k8s.scale_deployment", ARGS, "key:other-agent", "rev1"),
        ("k8s.scale_deployment", ARGS, AGENT.id, "rev2"),
    ],
)
async def test_binding_refuses_anything_else(
    harness: AppHarness, tool: str, args: dict[str, Any], requester: str, revision: str
) -> None:
    svc = _svc(harness)
    req = await svc.request(AGENT, _spec())
    await svc.decide(ANA, req.id, approve=True)
    with pytest.raises(Conflict) as ei:
        await svc.claim("default", req.id, tool, args, requester, revision)
    assert ei.value.code == "binding_mismatch"
    assert (await svc.get("default", req.id)).status == "approved"  # still unused


async def test_requester_never_approves_and_agents_never_decide(harness: AppHarness) -> None:
    svc = _svc(harness)
    req = await svc.request(ANA, _spec())
    with pytest.raises(Conflict) as ei:
        await svc.decide(ANA, req.id, approve=True)
    assert ei.value.code == "own_request"
    agent_in_group = Principal(
        id="key:a2",
        kind="agent",
        tenant="default",
        groups=frozenset({"sg-k8s-approvers"}),
        roles=frozenset({"agent"}),
    )
    with pytest.raises(Forbidden, match="agents cannot decide"):
        await svc.decide(agent_in_group, req.id, approve=True)
    with pytest.raises(Forbidden):
        await svc.decide(CAROL, req.id, approve=True)  # not in the approver group
    assert (await svc.get("default", req.id)).status == "pending"


async def test_n_approvals_and_deny(harness: AppHarness) -> None:
    svc = _svc(harness)
    req = await svc.request(AGENT, _spec(required_approvals=2))
    assert (await svc.decide(ANA, req.id, approve=True)).status == "pending"
    with pytest.raises(Conflict):
        await svc.decide(ANA, req.id, approve=True)  # one vote each
    assert (await svc.decide(BEN, req.id, approve=True)).status == "approved"
    other = await svc.request(AGENT, _spec())
    assert (
        await svc.decide(BEN, other.id, approve=False, reason="wrong cluster")
    ).status == "denied"
    with pytest.raises(Conflict) as ei:
        await svc.decide(ANA, other.id, approve=True)
    assert ei.value.code == "already_denied"


async def test_expiry_is_denial(harness: AppHarness) -> None:
    svc = _svc(harness)
    req = await svc.request(AGENT, _spec(ttl=timedelta(milliseconds=1)))
    await asyncio.sleep(0.01)
    with pytest.raises(Conflict) as ei:
        await svc.decide(ANA, req.id, approve=True)
    assert ei.value.code == "expired"
    with pytest.raises(Conflict):
        await svc.claim("default", req.id, "k8s.scale_deployment", ARGS, AGENT.id, "rev1")
    assert (await svc.get("default", req.id)).status == "expired"


async def test_escalation_group_after_timeout(harness: AppHarness) -> None:
    svc = _svc(harness)
    req = await svc.request(
        AGENT, _spec(escalation_groups=("sg-oncall-leads",), escalate_after=timedelta(hours=1))
    )
    with pytest.raises(Forbidden):
        await svc.decide(CAROL, req.id, approve=True)
    async with harness.runtime.db.session("default") as s:
        from datetime import UTC, datetime

        await s.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == req.id)
            .values(escalate_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await svc.decide(CAROL, req.id, approve=True)).status == "approved"


async def test_waits_survive_a_restart(harness: AppHarness) -> None:
    """A second service over the same database (a restarted process) sees and decides it."""
    rt = harness.runtime
    req = await _svc(harness).request(AGENT, _spec())
    fresh = ApprovalService(rt.db, rt.audit, rt.bus, rt.policy, rt.secret_key)
    assert (await fresh.decide(ANA, req.id, approve=True)).status == "approved"
    assert (
        await fresh.claim("default", req.id, "k8s.scale_deployment", ARGS, AGENT.id, "rev1")
    ).status == "executing"


async def test_inbox_over_http(harness: AppHarness) -> None:
    h = harness
    rt = h.runtime
    req = await _svc(h).request(AGENT, _spec())
    requester_key = (
        await rt.identity.keys.create(
            tenant="default",
            name="agent",
            kind="agent",
            roles=["agent"],
            scopes=[],
            created_by="t",
            expires_at=None,
        )
    ).key
    listed = await h.client.get("/api/v1/approvals", headers=h.auth())
    assert listed.status_code == 200
    [item] = [x for x in listed.json() if x["id"] == req.id]
    assert item["arguments"] == ARGS and item["preview"] == {"current": 3, "desired": 6}
    assert item["rationale"] == "p99 latency above SLO" and item["zone"] == "kubernetes"
    # the agent cannot approve; bad bodies are refused; unknown ids are 404
    r = await h.client.post(
        f"/api/v1/approvals/{req.id}/approve", json={}, headers=h.auth(requester_key)
    )
    assert r.status_code == 403 and "agents cannot decide approvals" in r.json()["detail"]
    r = await h.client.post(
        f"/api/v1/approvals/{req.id}/approve", json={"reason": "x", "as": "ben"}, headers=h.auth()
    )
    assert r.status_code == 422
    r = await h.client.post("/api/v1/approvals/nope/approve", json={}, headers=h.auth())
    assert r.status_code == 404
    # an admin outside the zone's approver group may not decide either: groups are policy data
    r = await h.client.post(
        f"/api/v1/approvals/{req.id}/deny", json={"reason": "not now"}, headers=h.auth()
    )
    assert r.status_code == 403, r.text
    assert (await _svc(h).get("default", req.id)).status == "pending"
    audit = await h.client.get(
        "/api/v1/audit", params={"action_prefix": "approval."}, headers=h.auth()
    )
    assert "approval.requested" in {e["action"] for e in audit.json()["items"]}
