"""Per-tenant zone edits: a tenant raises a zone's gate; other tenants are unaffected."""

from __future__ import annotations

from tests.conftest import AppHarness


async def _key(
    h: AppHarness, roles: list[str], tenant: str = "default", kind: str = "agent"
) -> str:
    await h.runtime.db.ensure_tenant(tenant)
    created = await h.runtime.identity.keys.create(
        tenant=tenant,
        name=f"k-{roles[0]}",
        kind=kind,
        roles=roles,
        scopes=[],
        created_by="t",
        expires_at=None,
    )
    return created.key


async def test_a_tenant_raises_a_zone_gate_for_itself_only(harness: AppHarness) -> None:
    h = harness
    agent = await _key(h, ["agent"])
    other_agent = await _key(h, ["agent"], tenant="acme")
    admin = await _key(h, ["admin"], kind="user")

    def call(key: str) -> object:
        return h.client.post(
            "/api/v1/tools/host.local_load/call", json={"arguments": {}}, headers=h.auth(key)
        )

    r = await call(agent)  # type: ignore[misc]
    assert r.json()["status"] == "executed"  # type: ignore[attr-defined]

    r = await h.client.put(
        "/api/v1/tools/zones/monitoring",
        json={"default_gate": "L2", "sensitivity": "confidential", "extra_process_areas": ["slo"]},
        headers=h.auth(admin),
    )
    assert r.status_code == 200, r.text
    assert r.json()["default_gate"] == "L2" and "slo" in r.json()["process_areas"]
    zones = (await h.client.get("/api/v1/tools/zones", headers=h.auth(agent))).json()
    assert next(z for z in zones if z["id"] == "monitoring")["sensitivity"] == "confidential"

    r = await call(agent)  # type: ignore[misc]
    out = r.json()  # type: ignore[attr-defined]
    assert out["status"] == "pending_approval" and out["gate"] == "L2"
    r = await call(other_agent)  # type: ignore[misc]
    assert r.json()["status"] == "executed"  # type: ignore[attr-defined]  # acme unaffected

    r = await h.client.delete("/api/v1/tools/zones/monitoring", headers=h.auth(admin))
    assert r.status_code == 200 and r.json()["default_gate"] == "L0"
    r = await call(agent)  # type: ignore[misc]
    assert r.json()["status"] == "executed"  # type: ignore[attr-defined]

    audit = (
        await h.client.get(
            "/api/v1/audit", params={"action_prefix": "tool.zone"}, headers=h.auth(admin)
        )
    ).json()
    assert [e["action"] for e in audit["items"]] == ["tool.zone.reset", "tool.zone.edit"]


async def test_zone_edit_bad_input(harness: AppHarness) -> None:
    h = harness
    admin = await _key(h, ["admin"], kind="user")
    agent = await _key(h, ["agent"])
    cases = [
        ("nope", {"default_gate": "L1"}, 404),
        ("monitoring", {"default_gate": "L9"}, 422),
        ("monitoring", {"gate": "L1"}, 422),
        ("monitoring", {"extra_process_areas": ["Bad Area"]}, 422),
    ]
    for zone, body, status in cases:
        r = await h.client.put(f"/api/v1/tools/zones/{zone}", json=body, headers=h.auth(admin))
        assert r.status_code == status, (zone, body, r.text)
    r = await h.client.put(
        "/api/v1/tools/zones/monitoring", json={"default_gate": "L0"}, headers=h.auth(agent)
    )
    assert r.status_code == 403
    zones = (await h.client.get("/api/v1/tools/zones", headers=h.auth(agent))).json()
    assert next(z for z in zones if z["id"] == "monitoring")["default_gate"] == "L0"


async def test_connector_status_for_operators(harness: AppHarness) -> None:
    h = harness
    admin = await _key(h, ["admin"], kind="user")
    agent = await _key(h, ["agent"])
    r = await h.client.get("/api/v1/tools/connectors", headers=h.auth(admin))
    assert r.status_code == 200, r.text
    by_name = {c["name"]: c for c in r.json()}
    assert by_name["host"]["state"] == "ready" and by_name["host"]["tools"] >= 7
    # configured off by default: disabled, with no tools in the catalog
    assert by_name["kubernetes"]["state"] == "disabled" and by_name["kubernetes"]["tools"] == 0
    assert by_name["aws"]["state"] == "disabled" and by_name["aws"]["tools"] == 0
    r = await h.client.get("/api/v1/tools/connectors", headers=h.auth(agent))
    assert r.status_code == 403
