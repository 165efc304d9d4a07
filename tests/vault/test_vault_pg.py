from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import AppHarness

pytestmark = pytest.mark.postgres


async def test_secrets_under_rls(pg_harness: AppHarness) -> None:
    h = pg_harness
    r = await h.client.put(
        "/api/v1/secrets/provider", json={"value": "pg-secret-value"}, headers=h.auth()
    )
    assert r.status_code == 200, r.text
    rt = h.runtime
    await rt.db.ensure_tenant("acme")
    async with rt.db.session("acme") as s:
        assert (await s.execute(text("select count(*) from secrets"))).scalar() == 0
    async with rt.db.session("default") as s:
        raw = (await s.execute(text("select ciphertext from secrets"))).scalar_one()
    assert b"pg-secret-value" not in raw
    assert (await rt.vault.get("default", "provider")).reveal() == "pg-secret-value"
