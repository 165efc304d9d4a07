"""Undo through the same gates, execution records, and agent loop caps."""

from __future__ import annotations

import asyncio

import pytest

from opsgate.identity.principal import Principal
from tests.conftest import AppHarness
from tests.tools.fakeops import APPROVER, OpsConnector


@pytest.fixture
def ops(harness: AppHarness) -> OpsConnector:
    return OpsConnector.install(harness.runtime)


async def _key(h: AppHarness, roles: list[str], kind: str = "agent") -> str:
    created = await h.runtime.identity.keys.create(
        tenant="default",
        name=f"k-{roles[0]}",
        kind=kind,
        roles=roles,
        scopes=[],
        created_by="t",
        expires_at=None,
    )
    return created.key


async def test_l1_write_records_prior_state_and_undo_restores_it(
    harness: AppHarness, ops: OpsConnector
) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    events = h.runtime.bus.subscribe("tool.executed")
    next_event = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)  # subscribed before the call
    r = await h.client.post(
        "/api/v1/tools/k8s.scale/call",
        json={"arguments": {"namespace": "dev", "name": "api", "replicas": 5}},
        headers=h.auth(agent),
    )
    out = r.json()
    assert r.status_code == 200 and out["status"] == "executed" and out["gate"] == "L1", out
    assert ops.replicas == {"dev/api": 5}
    event = await asyncio.wait_for(next_event, 5)  # the L1 notification carries the one-click undo
    assert event["execution_id"] == out["execution_id"] and event["undo"] == "k8s.scale"

    listed = (await h.client.get("/api/v1/tools/executions", headers=h.auth(agent))).json()
    assert listed[0]["id"] == out["execution_id"] and listed[0]["prior"] == {"replicas": 3}

    r = await h.client.post(
        f"/api/v1/tools/executions/{out['execution_id']}/undo",
        json={"rationale": "too many"},
        headers=h.auth(agent),
    )
    assert r.status_code == 200 and r.json()["status"] == "executed", r.text
    assert ops.replicas == {"dev/api": 3}  # the inverse ran with the recorded prior state
    assert ops.calls[-1] == ("k8s.scale", {"namespace": "dev", "name": "api", "replicas": 3})

    row = await h.runtime.tools.executions.get("default", out["execution_id"])
    assert row.undone_by == r.json()["execution_id"]
    again = await h.client.post(
        f"/api/v1/tools/executions/{out['execution_id']}/undo", json={}, headers=h.auth(agent)
    )
    assert again.status_code == 409 and again.json()["code"] == "already_undone"


async def test_undo_of_a_gated_operation_waits_for_approval_too(
    harness: AppHarness, ops: OpsConnector
) -> None:
    h = harness
    rt = h.runtime
    spec, conn = rt.tools.tools["k8s.scale"]  # this deployment gates scaling at L2
    rt.tools.tools["k8s.scale"] = (spec.model_copy(update={"gate": "L2"}), conn)
    agent = Principal(id="key:a", kind="agent", tenant="default", roles=frozenset({"agent"}))
    args = {"namespace": "prod", "name": "api", "replicas": 1}
    first = await rt.tools.call(agent, "k8s.scale", args)
    assert first.status == "pending_approval" and first.approval_id
    await rt.approvals.decide(APPROVER, first.approval_id, approve=True)
    settled = await rt.held.wait("default", first.approval_id, 10, poll=0.05)
    assert settled.status == "executed" and ops.replicas == {"prod/api": 1}
    execution_id = (settled.result or {})["execution_id"]
    assert isinstance(execution_id, str)

    undo_out = await _undo(h, agent, execution_id)
    assert undo_out.status == "pending_approval"  # same gates as any call in prod
    assert ops.replicas == {"prod/api": 1}
    from opsgate.errors import Conflict

    with pytest.raises(Conflict) as info:
        await _undo(h, agent, execution_id)
    assert info.value.code == "undo_pending"
    assert undo_out.approval_id
    await rt.approvals.decide(APPROVER, undo_out.approval_id, approve=True)
    await rt.held.wait("default", undo_out.approval_id, 10, poll=0.05)
    assert ops.replicas == {"prod/api": 3}
    row = await rt.tools.executions.get("default", execution_id)
    assert row.undone_by is not None


async def _undo(h: AppHarness, p: Principal, execution_id: str) -> object:
    from opsgate.tools.executions import undo

    return await undo(h.runtime.tools, p, execution_id, "revert")


async def test_undo_refusals(harness: AppHarness, ops: OpsConnector) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    other = await _key(h, ["agent"])
    r = await h.client.post(
        "/api/v1/tools/k8s.restart/call",
        json={"arguments": {"namespace": "dev", "name": "api"}},
        headers=h.auth(agent),
    )
    restart = r.json()["execution_id"]
    r = await h.client.post(
        f"/api/v1/tools/executions/{restart}/undo", json={}, headers=h.auth(agent)
    )
    assert r.status_code == 409 and r.json()["code"] == "no_inverse"
    # someone else's execution does not exist for an agent
    r = await h.client.post(
        f"/api/v1/tools/executions/{restart}/undo", json={}, headers=h.auth(other)
    )
    assert r.status_code == 404
    r = await h.client.post(
        "/api/v1/tools/executions/nope/undo", json={"x": 1}, headers=h.auth(agent)
    )
    assert r.status_code == 422  # unknown fields refused before anything else


async def test_agent_loop_caps(harness: AppHarness, ops: OpsConnector) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    same = {"arguments": {"namespace": "dev", "name": "api"}}
    codes = []
    for _ in range(7):
        r = await h.client.post("/api/v1/tools/k8s.restart/call", json=same, headers=h.auth(agent))
        codes.append(r.status_code)
    assert codes == [200] * 5 + [429, 429]
    assert "same k8s.restart call" in r.json()["detail"] and r.headers["Retry-After"] == "60"
    assert len(ops.calls) == 5
    # a different call still goes through; a person is never capped
    r = await h.client.post(
        "/api/v1/tools/k8s.restart/call",
        json={"arguments": {"namespace": "dev", "name": "web"}},
        headers=h.auth(agent),
    )
    assert r.status_code == 200
    h.runtime.tools.loop_caps.per_minute = 6
    r = await h.client.post(
        "/api/v1/tools/k8s.restart/call",
        json={"arguments": {"namespace": "dev", "name": "db"}},
        headers=h.auth(agent),
    )
    assert r.status_code == 429 and "tool calls in a minute" in r.json()["detail"]
