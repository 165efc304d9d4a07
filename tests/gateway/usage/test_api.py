"""GET /api/v1/usage: who sees what, and bad queries refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import AppHarness
from tests.gateway.killswitch.conftest import MakeKey, bearer
from tests.gateway.usage.test_recorder import rec

URL = "/api/v1/usage"


async def _seed(h: AppHarness, user_id: str) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    usage = h.runtime.usage
    usage.record(rec(ts=now, principal_id=user_id, model="a", cost=0.5))
    usage.record(rec(ts=now, principal_id="someone-else", model="b", cost=2.0))
    usage.record(rec(ts=now - timedelta(days=2), principal_id=user_id, model="a", cost=0.25))
    usage.record(rec(ts=now, tenant="acme", principal_id=user_id, model="a", cost=7.0))
    await usage.flush()


async def test_admin_and_auditor_see_the_tenant_users_see_themselves(
    ks_harness: AppHarness, make_key: MakeKey
) -> None:
    h = ks_harness
    user, user_id = await make_key("user")
    auditor, _ = await make_key("auditor")
    await h.runtime.db.ensure_tenant("acme")
    await _seed(h, f"key:{user_id}")

    r = await h.client.get(URL, params={"group_by": "principal"}, headers=h.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "tenant"
    assert {row["key"]: row["cost"] for row in body["rows"]} == {
        "someone-else": 2.0,
        f"key:{user_id}": 0.75,
    }
    assert body["total"]["requests"] == 3 and body["total"]["cost"] == 2.75

    r = await h.client.get(URL, params={"group_by": "model"}, headers=bearer(auditor))
    assert r.json()["scope"] == "tenant" and len(r.json()["rows"]) == 2

    r = await h.client.get(URL, params={"group_by": "day"}, headers=bearer(user))
    body = r.json()
    assert body["scope"] == "self"
    assert [row["cost"] for row in body["rows"]] == [0.25, 0.5]  # two days, own rows only
    assert body["total"]["cost"] == 0.75

    r = await h.client.get(
        URL, params={"principal": f"key:{user_id}", "group_by": "model"}, headers=h.auth()
    )
    assert [(row["key"], row["requests"]) for row in r.json()["rows"]] == [("a", 2)]


async def test_a_user_cannot_ask_for_someone_else(
    ks_harness: AppHarness, make_key: MakeKey
) -> None:
    user, _ = await make_key("user")
    r = await ks_harness.client.get(URL, params={"principal": "someone-else"}, headers=bearer(user))
    assert r.status_code == 403
    assert (await ks_harness.client.get(URL)).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"group_by": "color"},
        {"since": "yesterday"},
        {"since": "2026-11-20T00:00:00Z", "until": "2026-11-19T00:00:00Z"},
        {"since": "2026-11-20T00:00:00Z", "until": "2026-11-20T00:00:00Z"},
        {"since": "2020-01-01T00:00:00Z", "until": "2026-11-20T00:00:00Z"},
        {"limit": "0"},
        {"limit": "100000"},
        {"principal": "p" * 201},
    ],
)
async def test_bad_queries_are_422(ks_harness: AppHarness, params: dict[str, str]) -> None:
    r = await ks_harness.client.get(URL, params=params, headers=ks_harness.auth())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_dates_and_limit(ks_harness: AppHarness) -> None:
    h = ks_harness
    usage = h.runtime.usage
    for i in range(5):
        usage.record(
            rec(ts=datetime(2026, 11, 1 + i, 12, tzinfo=UTC), principal_id=f"p{i}", cost=float(i))
        )
    await usage.flush()
    r = await h.client.get(
        URL,
        params={
            "group_by": "principal",
            "since": "2026-11-02",
            "until": "2026-11-05",
            "limit": "2",
        },
        headers=h.auth(),
    )
    body = r.json()
    assert r.status_code == 200, r.text
    assert [row["key"] for row in body["rows"]] == ["p3", "p2"] and body["truncated"]
    assert body["total"]["requests"] == 3
