"""The kill-switch API: flip, list, revive; who may; every bad input refused unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from opsgate.errors import Forbidden, Unavailable
from tests.conftest import AppHarness
from tests.gateway.killswitch.conftest import MakeKey, bearer

URL = "/api/v1/killswitches"


async def _active(h: AppHarness) -> list[dict[str, Any]]:
    r = await h.client.get(URL, headers=h.auth())
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_kill_model_refuses_it_and_revive_restores(ks_harness: AppHarness) -> None:
    h = ks_harness
    ks = h.runtime.killswitches
    r = await h.client.post(
        URL,
        json={"scope": "model", "target": "ops-default", "reason": "cost runaway"},
        headers=h.auth(),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["scope"] == "model" and body["target"] == "ops-default"
    assert body["reason"] == "cost runaway" and body["actor"].startswith("key:")
    with pytest.raises(Unavailable) as exc:
        ks.check(model="ops-default", key_id=None)
    assert "cost runaway" in exc.value.detail
    ks.check(model="other", key_id=None)  # other models are untouched
    assert [i["target"] for i in await _active(h)] == ["ops-default"]

    r = await h.client.delete(
        f"{URL}/model/ops-default", params={"reason": "fixed"}, headers=h.auth()
    )
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == "fixed"
    ks.check(model="ops-default", key_id=None)
    assert await _active(h) == []


async def test_platform_and_deployment_switches(ks_harness: AppHarness) -> None:
    h = ks_harness
    ks = h.runtime.killswitches
    r = await h.client.post(
        URL,
        json={"scope": "deployment", "target": "primary", "reason": "provider incident"},
        headers=h.auth(),
    )
    assert r.status_code == 201
    assert ks.is_killed_deployment("primary") and not ks.is_killed_deployment("spare")
    ks.check(model="ops-default", key_id=None)  # a deployment switch only reroutes
    r = await h.client.post(
        URL, json={"scope": "platform", "reason": "breach drill"}, headers=h.auth()
    )
    assert r.status_code == 201 and r.json()["target"] == "*"
    with pytest.raises(Unavailable, match="breach drill"):
        ks.check(model="other", key_id=None)
    r = await h.client.request(
        "DELETE", f"{URL}/platform/*", json={"reason": "drill over"}, headers=h.auth()
    )
    assert r.status_code == 200
    ks.check(model="other", key_id=None)


async def test_kill_key_is_tenant_bound(ks_harness: AppHarness, make_key: MakeKey) -> None:
    h = ks_harness
    ks = h.runtime.killswitches
    _, victim = await make_key("user")
    r = await h.client.post(
        URL,
        json={"scope": "api_key", "target": victim, "reason": "leaked in a repo"},
        headers=h.auth(),
    )
    assert r.status_code == 201 and r.json()["tenant"] == "default"
    with pytest.raises(Forbidden, match="leaked in a repo"):
        ks.check(model="ops-default", key_id=victim, tenant="default")
    ks.check(model="ops-default", key_id=victim, tenant="other-tenant")
    # Another tenant's admin can neither see nor touch it, nor kill keys it does not own.
    other_admin, other_key = await make_key("admin", tenant="acme")
    r = await h.client.get(URL, headers=bearer(other_admin))
    assert r.json()["items"] == []
    r = await h.client.request(
        "DELETE", f"{URL}/api_key/{victim}", json={"reason": "x"}, headers=bearer(other_admin)
    )
    assert r.status_code == 404
    r = await h.client.post(
        URL, json={"scope": "api_key", "target": victim, "reason": "x"}, headers=bearer(other_admin)
    )
    assert r.status_code == 404
    # ... but can kill its own key, which the default tenant's admin does not see.
    r = await h.client.post(
        URL,
        json={"scope": "api_key", "target": other_key, "reason": "y"},
        headers=bearer(other_admin),
    )
    assert r.status_code == 201
    assert [i["target"] for i in await _active(h)] == [victim]


async def test_operator_wide_scopes_need_the_operator_tenant(
    ks_harness: AppHarness, make_key: MakeKey
) -> None:
    other_admin, _ = await make_key("admin", tenant="acme")
    for body in (
        {"scope": "platform", "reason": "x"},
        {"scope": "model", "target": "ops-default", "reason": "x"},
        {"scope": "deployment", "target": "primary", "reason": "x"},
    ):
        r = await ks_harness.client.post(URL, json=body, headers=bearer(other_admin))
        assert r.status_code == 403, body
    assert ks_harness.runtime.killswitches.active() == []


async def test_roles(ks_harness: AppHarness, make_key: MakeKey) -> None:
    h = ks_harness
    user, _ = await make_key("user")
    auditor, _ = await make_key("auditor")
    operator, _ = await make_key("operator")
    kill = {"scope": "model", "target": "other", "reason": "x"}
    for key in (user, auditor, operator):
        r = await h.client.post(URL, json=kill, headers=bearer(key))
        assert r.status_code == 403
    assert (await h.client.get(URL, headers=bearer(user))).status_code == 403
    assert (await h.client.get(URL, headers=bearer(auditor))).status_code == 200
    assert (await h.client.get(URL, headers=bearer(operator))).status_code == 200
    assert (await h.client.get(URL)).status_code == 401
    assert h.runtime.killswitches.active() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"scope": "model", "target": "other"}, 422),  # no reason
        ({"scope": "model", "target": "other", "reason": ""}, 422),
        ({"scope": "model", "target": "other", "reason": "   "}, 422),
        ({"scope": "model", "target": "other", "reason": "a\x00b"}, 422),
        ({"scope": "model", "target": "other", "reason": "r" * 501}, 422),
        ({"scope": "galaxy", "target": "other", "reason": "x"}, 422),
        ({"scope": "model", "target": "other", "reason": "x", "actor": "someone-else"}, 422),
        ({"scope": "platform", "target": "ops-default", "reason": "x"}, 422),
        ({"scope": "model", "target": "../etc", "reason": "x"}, 422),
        ({"scope": "model", "target": "' OR '1'='1", "reason": "x"}, 422),
        ({"scope": "model", "target": "gpt-typo", "reason": "x"}, 404),
        ({"scope": "deployment", "target": "nope", "reason": "x"}, 404),
        ({"scope": "api_key", "target": "no-such-key", "reason": "x"}, 404),
    ],
)
async def test_bad_kill_requests_change_nothing(
    ks_harness: AppHarness, body: dict[str, Any], status: int
) -> None:
    r = await ks_harness.client.post(URL, json=body, headers=ks_harness.auth())
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert ks_harness.runtime.killswitches.active() == []
    assert await _active(ks_harness) == []


async def test_bad_revive_requests(ks_harness: AppHarness) -> None:
    h = ks_harness
    await h.client.post(
        URL, json={"scope": "model", "target": "other", "reason": "x"}, headers=h.auth()
    )
    r = await h.client.delete(f"{URL}/model/other", headers=h.auth())  # no reason
    assert r.status_code == 422
    r = await h.client.delete(f"{URL}/model/other", params={"reason": " "}, headers=h.auth())
    assert r.status_code == 422
    r = await h.client.delete(f"{URL}/galaxy/other", params={"reason": "x"}, headers=h.auth())
    assert r.status_code == 404
    r = await h.client.delete(f"{URL}/model/ops-default", params={"reason": "x"}, headers=h.auth())
    assert r.status_code == 404  # not switched off
    assert h.runtime.killswitches.is_killed("model", "other")


async def test_metrics_gauge(ks_harness: AppHarness) -> None:
    h = ks_harness
    await h.client.post(
        URL, json={"scope": "model", "target": "other", "reason": "x"}, headers=h.auth()
    )
    text = (await h.client.get("/metrics")).text
    assert 'opsgate_killswitch_active{scope="model"} 1.0' in text
    assert 'opsgate_killswitch_active{scope="platform"} 0.0' in text


async def test_readiness_reports_the_controls(ks_harness: AppHarness) -> None:
    r = await ks_harness.client.get("/readyz")
    checks = r.json()["checks"]
    assert checks["killswitches"] == "ok" and checks["quota"] == "ok" and checks["usage"] == "ok"
