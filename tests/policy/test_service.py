"""PolicyService: precedence, bad input, fail-closed, hot reload, decision records."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from opsgate.audit.base import MemoryAuditor
from opsgate.identity.principal import Principal
from opsgate.policy.bundle import DEFAULT_BUNDLE, BundleError, probe, read_bundle
from opsgate.policy.engines import EmbeddedEngine, PolicyEvaluationError
from opsgate.policy.service import PolicyService, interpret
from opsgate.policy.settings import PolicySettings

AGENT = Principal(id="key:a1", kind="agent", tenant="default", roles=frozenset({"agent"}))
USER = Principal(id="u1", kind="user", tenant="default", roles=frozenset({"user"}))


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, d)
    return d


def _svc(bundle_dir: Path, audit: MemoryAuditor, **kw: Any) -> PolicyService:
    return PolicyService(
        PolicySettings(bundle_dir=str(bundle_dir), reload_seconds=0.05, **kw), audit
    )


async def test_decision_and_record(bundle_dir: Path) -> None:
    audit = MemoryAuditor()
    svc = _svc(bundle_dir, audit)
    res = {
        "kind": "tool",
        "name": "k8s.delete_pod",
        "zone": "kubernetes",
        "risk": "destructive",
        "gate": "L1",
        "namespace": "prod",
    }
    d = await svc.decide(AGENT, "tool.call", res, {"hour": 10, "weekday": 2})
    assert d.allow and d.requires_approval and d.obligations.gate == "L2"
    assert d.obligations.approver_groups == ("sg-k8s-approvers",)
    [ev] = audit.events
    assert ev.action == "policy.decision" and ev.outcome == "allowed"
    assert ev.payload["bundle_revision"] == svc.revision and len(ev.payload["input_digest"]) == 64
    assert "namespace" not in str(ev.payload)  # the input itself is not recorded, only its digest


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {
            "principal": {"id": "x"},
            "action": "model.invoke",
            "resource": {"kind": "model", "name": "m"},
        },
        {
            "principal": {"id": "x", "kind": "robot", "tenant": "t"},
            "action": "a",
            "resource": {"kind": "k", "name": "n"},
        },
        {
            "principal": {"id": "x", "kind": "user", "tenant": "t"},
            "action": "Bad Action!",
            "resource": {"kind": "k", "name": "n"},
        },
        {
            "principal": {"id": "x", "kind": "user", "tenant": "t"},
            "action": "a",
            "resource": "not-an-object",
        },
        {
            "principal": {"id": "x", "kind": "user", "tenant": "t", "roles": ["r"] * 1000},
            "action": "a",
            "resource": {"kind": "k", "name": "n"},
        },
    ],
)
async def test_bad_input_is_a_deny_with_reason(bundle_dir: Path, doc: dict[str, Any]) -> None:
    d = await _svc(bundle_dir, MemoryAuditor()).decide_document(doc)
    assert not d.allow
    assert d.reasons[0].startswith("invalid input: ")


def test_precedence_is_enforced_in_python_too() -> None:
    assert not interpret({"allow": True, "reasons": []}, "r", "d").allow  # no reason, no allow
    assert not interpret({"allow": "yes", "reasons": ["x"]}, "r", "d").allow  # only literal true
    d = interpret({"allow": True, "reasons": ["x"], "obligations": {"max_tokens": -5}}, "r", "d")
    assert d.allow and d.obligations.gate == "L0" and d.obligations.max_tokens is None
    # A gate level the bundle got wrong must not turn into "no gate" (L0): it denies.
    for bad in ("L9", "l2", 2, ["L2"]):
        d = interpret({"allow": True, "reasons": ["x"], "obligations": {"gate": bad}}, "r", "d")
        assert not d.allow and "invalid gate level" in d.reasons[0]
    assert not interpret({}, "r", "d").allow


class _Broken(EmbeddedEngine):
    async def evaluate(self, input_doc: dict[str, Any]) -> dict[str, Any]:
        raise PolicyEvaluationError("boom")


async def test_evaluation_error_fails_closed_with_alert(bundle_dir: Path) -> None:
    audit = MemoryAuditor()
    engine = _Broken(read_bundle(bundle_dir, 10**6, 10**5))
    svc = PolicyService(
        PolicySettings(bundle_dir=str(bundle_dir), fail_open_actions=["model.invoke"]),
        audit,
        engine,
    )
    closed = await svc.decide(
        AGENT, "tool.call", {"kind": "tool", "name": "t", "zone": "kubernetes"}
    )
    assert not closed.allow and closed.error and "fail closed" in closed.reasons[0]
    opened = await svc.decide(USER, "model.invoke", {"kind": "model", "name": "m"})
    assert opened.allow and "fail-open" in opened.reasons[0]
    assert [e.action for e in audit.events].count("policy.alert") == 2


async def test_hot_reload_keeps_old_on_broken_and_swaps_on_fixed(bundle_dir: Path) -> None:
    audit = MemoryAuditor()
    svc = _svc(bundle_dir, audit)
    await svc.start()
    try:
        rev0 = svc.revision
        res = {"kind": "model", "name": "confidential-chat"}
        assert not (await svc.decide(USER, "model.invoke", res)).allow

        async def hammer(stop: asyncio.Event) -> int:
            n = 0
            while not stop.is_set():
                d = await svc.decide(
                    USER, "model.invoke", {"kind": "model", "name": "ops-default"}, record=False
                )
                assert d.allow and not d.error
                n += 1
                await asyncio.sleep(0)
            return n

        stop = asyncio.Event()
        load = asyncio.create_task(hammer(stop))
        (bundle_dir / "opsgate" / "broken.rego").write_text(
            "package opsgate\n\nx if { input.a == }\n"
        )
        for _ in range(100):
            await asyncio.sleep(0.05)
            if svc.last_error:
                break
        assert svc.last_error and "broken.rego:3" in svc.last_error
        assert svc.revision == rev0
        (bundle_dir / "opsgate" / "broken.rego").unlink()
        data = (bundle_dir / "opsgate" / "data.json").read_text()
        (bundle_dir / "opsgate" / "data.json").write_text(
            data.replace(
                '"groups": ["sg-confidential"]', '"groups": ["sg-confidential"], "roles_extra": []'
            ).replace(
                '"confidential-chat": {"roles": ["admin", "operator"]',
                '"confidential-chat": {"roles": ["admin", "operator", "user"]',
            )
        )
        for _ in range(200):
            await asyncio.sleep(0.05)
            if svc.revision != rev0:
                break
        assert svc.revision != rev0 and svc.last_error is None
        assert (await svc.decide(USER, "model.invoke", res)).allow
        stop.set()
        assert await load > 10  # requests kept flowing during both reloads
        assert "policy.alert" in [e.action for e in audit.events]
    finally:
        await svc.aclose()


def test_exploding_policy_is_refused_by_the_probe(tmp_path: Path) -> None:
    d = tmp_path / "b"
    d.mkdir()
    (d / "p.rego").write_text(
        "package opsgate\nimport rego.v1\n"
        'decision := {"allow": count([x | some x in numbers.range(1, 2000000000)]) > 0, "reasons": ["x"]}\n'
    )
    b = read_bundle(d, 10**6, 10**5)
    with pytest.raises(BundleError, match="did not finish"):
        probe(b, 2.0, 10**6, 10**5)


def test_oversized_policy_file_refused(tmp_path: Path) -> None:
    d = tmp_path / "b"
    d.mkdir()
    (d / "p.rego").write_text("package opsgate\n" + "# x\n" * 50)
    with pytest.raises(BundleError, match="exceeds"):
        read_bundle(d, 10**6, 20)
    with pytest.raises(BundleError, match="not found"):
        read_bundle(tmp_path / "missing", 10**6, 20)
