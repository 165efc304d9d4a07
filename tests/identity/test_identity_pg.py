"""API keys on the real PostgreSQL, under forced row-level security."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from opsgate.db.engine import Database
from opsgate.identity.models import ApiKey
from tests.conftest import AppHarness

pytestmark = pytest.mark.postgres


async def test_keys_work_under_rls_and_stay_in_their_tenant(pg_harness: AppHarness) -> None:
    h = pg_harness
    r = await h.client.get("/api/v1/whoami", headers=h.auth())
    assert r.status_code == 200 and r.json()["tenant"] == "default"
    rt = h.runtime
    await rt.db.ensure_tenant("acme")
    issued = await rt.identity.keys.create(
        tenant="acme",
        name="acme-admin",
        kind="service",
        roles=["admin"],
        scopes=[],
        created_by="test",
        expires_at=None,
    )
    who = await h.client.get("/api/v1/whoami", headers=h.auth(issued.key))
    assert who.json()["tenant"] == "acme"
    # acme's admin lists only acme's keys; default's admin only default's
    acme = (await h.client.get("/api/v1/keys", headers=h.auth(issued.key))).json()
    dflt = (await h.client.get("/api/v1/keys", headers=h.auth())).json()
    assert [k["name"] for k in acme] == ["acme-admin"]
    assert "acme-admin" not in [k["name"] for k in dflt]
    # acme's admin cannot revoke default's key
    r = await h.client.delete(f"/api/v1/keys/{dflt[0]['id']}", headers=h.auth(issued.key))
    assert r.status_code == 404
    # a hand-written query in default's session cannot see acme's hash
    db: Database = rt.db
    async with db.session("default") as s:
        rows = (await s.execute(text("select tenant_id from api_keys"))).scalars().all()
        assert set(rows) == {"default"}
        assert (await s.scalars(select(ApiKey).where(ApiKey.tenant_id == "acme"))).all() == []
