"""The kubernetes connector, with the official client talking to a fake API server.

No real cluster can run here: tests/fakes/k8s_api.py serves the Kubernetes REST wire format
over real HTTP on 127.0.0.1, and the connector reaches it through a kubeconfig in tmp_path.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opsgate.errors import Forbidden, NotFound, ValidationFailed
from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ZONES_FILE, load_zones
from opsgate.tools.connectors.base import CallContext
from opsgate.tools.connectors.kubernetes import (
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    RESTARTED_AT,
    KubernetesConnector,
    KubernetesSettings,
)
from opsgate.tools.service import validate_args
from tests.conftest import AppHarness
from tests.fakes.k8s_api import FakeKubernetes, Recorded, seeded
from tests.tools.fakeops import APPROVER

ZONES = load_zones(ZONES_FILE)
USER = Principal(id="u", kind="user", tenant="default", roles=frozenset({"operator"}))
SECRETS = {"secret://k8s-prod": "tok-prod"}
POD = "web-7d4b9c-abcde"


async def _resolve(ref: str) -> str:
    if ref not in SECRETS:
        raise NotFound(f"no secret {ref}")
    return SECRETS[ref]


def _ctx() -> CallContext:
    return CallContext(USER, "default", _resolve, 5)


@pytest.fixture
def k8s() -> Iterator[FakeKubernetes]:
    fake = seeded().start()
    yield fake
    fake.stop()


@pytest.fixture
def kubeconfig(k8s: FakeKubernetes, tmp_path: Path) -> Path:
    tokens = {"team-a": "tok-team-a", "team-b": "tok-team-b", "nodes": "tok-nodes"}
    return k8s.write_kubeconfig(tmp_path / "kubeconfig", tokens, "team-a")


def _settings(kubeconfig: Path | None, **over: Any) -> KubernetesSettings:
    raw: dict[str, Any] = {
        "enabled": True,
        "kubeconfig": kubeconfig,
        "scopes": [
            {"namespace": "team-a", "context": "team-a"},
            {"namespace": "team-b", "context": "team-b"},
            {"namespace": "prod", "token": "secret://k8s-prod"},
        ],
        "node_scope": {"context": "nodes"},
    }
    return KubernetesSettings.model_validate({**raw, **over})


@pytest.fixture
async def conn(kubeconfig: Path) -> AsyncIterator[KubernetesConnector]:
    c = KubernetesConnector(_settings(kubeconfig), ZONES)
    yield c
    await c.aclose()


async def _call(c: KubernetesConnector, op: str, **args: Any) -> Any:
    return await c.call(f"kubernetes.{op}", args, _ctx())


# --- catalog and settings ---------------------------------------------------------------


def test_catalog_risks_gates_and_inverses(kubeconfig: Path) -> None:
    specs = {t.name: t for t in KubernetesConnector(_settings(kubeconfig), ZONES).tools()}
    reads = ["list_pods", "describe_pod", "list_deployments", "describe_deployment"]
    reads += ["list_events", "pod_logs"]
    assert len(specs) == 11
    for op in reads:
        spec = specs[f"kubernetes.{op}"]
        assert (spec.risk, spec.effective_gate, spec.supports_dry_run) == ("read", "L0", False)
    scale = specs["kubernetes.scale_deployment"]
    assert (scale.risk, scale.effective_gate, scale.supports_dry_run) == ("write", "L1", True)
    assert scale.inverse is not None and scale.inverse.tool == "kubernetes.scale_deployment"
    assert scale.inverse.arguments["replicas"] == "prior.replicas"
    cordon, uncordon = specs["kubernetes.cordon_node"], specs["kubernetes.uncordon_node"]
    assert cordon.inverse is not None and cordon.inverse.tool == uncordon.name
    assert uncordon.inverse is not None and uncordon.inverse.tool == cordon.name
    assert cordon.effective_gate == "L2" and cordon.required_roles == ["operator"]
    delete = specs["kubernetes.delete_pod"]
    assert (delete.risk, delete.effective_gate, delete.inverse) == ("destructive", "L2", None)
    assert all(s.zone == "kubernetes" for s in specs.values())
    # the schemas refuse what the code refuses, too
    with pytest.raises(ValidationFailed):
        validate_args(specs["kubernetes.describe_pod"], {"namespace": "team-a", "pod": "-rf"})
    with pytest.raises(ValidationFailed):
        validate_args(
            specs["kubernetes.pod_logs"], {"namespace": "a", "pod": "p", "tail_lines": 5000}
        )


def test_settings_are_strict(tmp_path: Path) -> None:
    assert KubernetesSettings().enabled is False
    bad: list[dict[str, Any]] = [
        {"enabled": True, "surprise": 1},
        {"scopes": [{"namespace": "team-a"}]},  # no service account of its own
        {"scopes": [{"namespace": "Team_A", "context": "x"}]},
        {"scopes": [{"namespace": "a", "token": "plaintext-token"}]},
        {"scopes": [{"namespace": "a", "context": "x"}, {"namespace": "a", "context": "y"}]},
        {"in_cluster": True, "kubeconfig": str(tmp_path / "k")},
    ]
    for raw in bad:
        with pytest.raises(ValidationError):
            KubernetesSettings.model_validate(raw)


async def test_status_disabled_exposes_nothing(kubeconfig: Path) -> None:
    c = KubernetesConnector(_settings(kubeconfig, enabled=False), ZONES)
    status = await c.status()
    assert status.state == "disabled" and "enabled" in status.reason
    assert c.tools() == []
    r = await _call(c, "list_pods", namespace="team-a")
    assert r.is_error and "disabled" in r.content["error"]


async def test_status_ready_and_why_it_failed(
    kubeconfig: Path, tmp_path: Path, k8s: FakeKubernetes
) -> None:
    assert (await KubernetesConnector(_settings(kubeconfig), ZONES).status()).state == "ready"
    missing = tmp_path / "nope.yaml"
    st = await KubernetesConnector(_settings(missing), ZONES).status()
    assert (
        st.state == "failed" and st.reason == f"scope team-a: kubeconfig {missing} does not exist"
    )
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("clusters: [unclosed")
    st = await KubernetesConnector(_settings(garbage), ZONES).status()
    assert st.state == "failed" and st.reason.startswith("scope team-a: ")
    scopes = [{"namespace": "team-a", "context": "no-such-context"}]
    st = await KubernetesConnector(_settings(kubeconfig, scopes=scopes), ZONES).status()
    assert st.state == "failed" and "no-such-context" in st.reason
    st = await KubernetesConnector(_settings(kubeconfig, scopes=[]), ZONES).status()
    assert st.state == "failed" and "no scopes" in st.reason
    incluster = _settings(None, in_cluster=True)  # not running in a pod here
    st = await KubernetesConnector(incluster, ZONES).status()
    assert st.state == "failed" and st.reason.startswith("scope team-a: ")
    assert k8s.requests == []  # status reads configuration only


# --- reads ------------------------------------------------------------------------------


async def test_list_pods_compact_and_exact_request(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    r = await _call(conn, "list_pods", namespace="team-a", label_selector="app=web")
    assert not r.is_error
    assert r.content["count"] == 2 and r.content["more"] is False
    rows = {p["name"]: p for p in r.content["pods"]}
    assert rows[POD] == {
        "name": POD,
        "status": "Running",
        "phase": "Running",
        "ready": "1/1",
        "restarts": 0,
        "node": "worker-1",
        "age": "3d",
    }
    crash = rows["web-7d4b9c-fghij"]
    assert (crash["status"], crash["ready"], crash["restarts"]) == ("CrashLoopBackOff", "0/1", 5)
    [req] = k8s.requests
    assert (req.method, req.path) == ("GET", "/api/v1/namespaces/team-a/pods")
    assert req.query == {"labelSelector": "app=web", "limit": "200"}
    assert req.authorization == "Bearer tok-team-a"


async def test_describe_pod_with_containers_and_events(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    r = await _call(conn, "describe_pod", namespace="team-a", pod="web-7d4b9c-fghij")
    c = r.content
    assert c["owner"] == "ReplicaSet/web-7d4b9c" and c["node"] == "worker-2"
    [app] = c["containers"]
    assert app["state"] == "waiting: CrashLoopBackOff"
    assert app["last_state"] == "terminated: Error (exit 1)"
    assert app["limits"] == {"memory": "256Mi"}
    assert [e["reason"] for e in c["events"]] == ["BackOff"]
    assert k8s.requests[1].query["fieldSelector"] == "involvedObject.name=web-7d4b9c-fghij"
    assert "managedFields" not in str(c) and "imageID" not in str(c)  # a summary, not the object


async def test_deployments_list_and_describe(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    r = await _call(conn, "list_deployments", namespace="team-a")
    web = next(d for d in r.content["deployments"] if d["name"] == "web")
    assert web == {
        "name": "web",
        "replicas": 2,
        "ready": 1,
        "updated": 2,
        "available": 1,
        "images": ["app:1.4.2"],
        "age": "40d",
    }
    r = await _call(conn, "describe_deployment", namespace="team-a", deployment="web")
    assert r.content["strategy"] == "RollingUpdate" and r.content["selector"] == {"app": "web"}
    assert r.content["containers"] == [
        {"name": "web", "image": "app:1.4.2", "requests": {"cpu": "250m"}}
    ]
    assert k8s.paths() == [
        "GET /apis/apps/v1/namespaces/team-a/deployments",
        "GET /apis/apps/v1/namespaces/team-a/deployments/web",
    ]


async def test_list_events_newest_first_and_filtered(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    r = await _call(conn, "list_events", namespace="team-a")
    assert [e["reason"] for e in r.content["events"]] == [
        "BackOff",
        "ScalingReplicaSet",
        "Scheduled",
    ]
    assert r.content["events"][0]["count"] == 42
    r = await _call(conn, "list_events", namespace="team-a", type="Warning", object_name="web")
    assert r.content["count"] == 0
    assert k8s.requests[-1].query["fieldSelector"] == "type=Warning,involvedObject.name=web"


async def test_pod_logs_tail_and_caps(conn: KubernetesConnector, k8s: FakeKubernetes) -> None:
    r = await _call(conn, "pod_logs", namespace="team-a", pod=POD, tail_lines=3)
    assert r.content["log"].splitlines() == [
        f"2025-01-01T00:00:00Z INFO request {i} served" for i in (4997, 4998, 4999)
    ]
    assert r.content["truncated"] is False and not r.truncated
    # beyond the line cap (the schema refuses it; the code clamps it anyway)
    r = await _call(conn, "pod_logs", namespace="team-a", pod=POD, tail_lines=100_000)
    assert k8s.requests[-1].query == {
        "tailLines": str(MAX_LOG_LINES),
        "limitBytes": str(MAX_LOG_BYTES),
    }
    assert r.content["line_count"] == MAX_LOG_LINES
    # beyond the byte cap: cut at a line end and marked truncated
    r = await _call(conn, "pod_logs", namespace="team-a", pod="web-7d4b9c-fghij", tail_lines=2000)
    assert r.truncated and r.content["truncated"] and "note" in r.content
    assert len(r.content["log"].encode()) <= MAX_LOG_BYTES
    assert all(len(line) == 206 for line in r.content["log"].splitlines())
    r = await _call(conn, "pod_logs", namespace="team-a", pod="web-7d4b9c-fghij", previous=True)
    assert r.content["log"] == "panic: nil map\nexit status 1"
    assert k8s.requests[-1].query["previous"] == "true"
    # two containers and none named: the API server's own error comes back as a result
    r = await _call(conn, "pod_logs", namespace="team-a", pod="api-0")
    assert r.is_error and r.content["status"] == 400 and "sidecar" in r.content["error"]
    r = await _call(conn, "pod_logs", namespace="team-a", pod="api-0", container="sidecar")
    assert r.content["log"] == "sidecar ready"


# --- writes -----------------------------------------------------------------------------


async def test_scale_dry_run_then_scale_and_undo(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    args = {"namespace": "team-a", "deployment": "web", "replicas": 5}
    preview = await conn.dry_run("kubernetes.scale_deployment", args, _ctx())
    assert preview == {"current_replicas": 2, "desired_replicas": 5}
    assert k8s.paths() == ["GET /apis/apps/v1/namespaces/team-a/deployments/web/scale"]
    assert k8s.deployments[("team-a", "web")]["spec"]["replicas"] == 2  # nothing changed
    r = await conn.call("kubernetes.scale_deployment", args, _ctx())
    assert r.content == {
        "namespace": "team-a",
        "deployment": "web",
        "prior_replicas": 2,
        "replicas": 5,
    }
    assert r.meta["prior"] == {"replicas": 2}
    patch = k8s.requests[-1]
    assert (patch.method, patch.path) == (
        "PATCH",
        "/apis/apps/v1/namespaces/team-a/deployments/web/scale",
    )
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body["spec"] == {"replicas": 5} and patch.body["metadata"]["resourceVersion"]
    assert k8s.deployments[("team-a", "web")]["spec"]["replicas"] == 5
    # the catalog's inverse, filled from args and the recorded prior state, scales back
    spec = next(t for t in conn.tools() if t.name == "kubernetes.scale_deployment")
    assert spec.inverse is not None
    sources = {"args": args, "prior": r.meta["prior"]}
    undo = {k: sources[v.split(".")[0]][v.split(".")[1]] for k, v in spec.inverse.arguments.items()}
    r = await conn.call(spec.inverse.tool, undo, _ctx())
    assert (
        r.content["replicas"] == 2 and k8s.deployments[("team-a", "web")]["spec"]["replicas"] == 2
    )


async def test_scale_refused_when_changed_since_read(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    # another writer bumps the object between our read and our patch: 409, nothing written
    def racing(req: Recorded) -> None:
        if req.method == "GET" and req.path.endswith("/scale"):
            k8s.deployments[("team-a", "web")]["metadata"]["resourceVersion"] = k8s.next_rv()

    k8s.after = racing
    r = await _call(conn, "scale_deployment", namespace="team-a", deployment="web", replicas=9)
    assert r.is_error and r.content["status"] == 409 and r.content["reason"] == "Conflict"
    assert k8s.deployments[("team-a", "web")]["spec"]["replicas"] == 2


async def test_rollout_restart_like_kubectl(conn: KubernetesConnector, k8s: FakeKubernetes) -> None:
    preview = await conn.dry_run(
        "kubernetes.rollout_restart", {"namespace": "team-a", "deployment": "web"}, _ctx()
    )
    assert preview == {
        "deployment": "web",
        "replicas": 2,
        "last_restarted_at": None,
        "paused": False,
    }
    r = await _call(conn, "rollout_restart", namespace="team-a", deployment="web")
    assert r.meta["prior"] == {"restartedAt": None, "generation": 7}
    assert r.content["generation"] == 8
    patch = k8s.requests[-1]
    assert (
        patch.method == "PATCH" and patch.content_type == "application/strategic-merge-patch+json"
    )
    stamp = patch.body["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert r.content["restarted_at"] == stamp and stamp.endswith("Z")
    tpl = k8s.deployments[("team-a", "web")]["spec"]["template"]
    assert tpl["metadata"]["annotations"][RESTARTED_AT] == stamp
    assert tpl["metadata"]["labels"] == {"app": "web"}  # merged, not replaced
    # a paused deployment is not restarted (kubectl refuses too)
    k8s.deployments[("team-a", "api")]["spec"]["paused"] = True
    before = len(k8s.requests)
    r = await _call(conn, "rollout_restart", namespace="team-a", deployment="api")
    assert r.is_error and "paused" in r.content["error"]
    assert [q.method for q in k8s.requests[before:]] == ["GET"]


async def test_cordon_and_uncordon_are_inverses(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    preview = await conn.dry_run("kubernetes.cordon_node", {"node": "worker-1"}, _ctx())
    assert preview == {
        "node": "worker-1",
        "currently_unschedulable": False,
        "desired_unschedulable": True,
    }
    r = await _call(conn, "cordon_node", node="worker-1")
    assert r.content == {"node": "worker-1", "unschedulable": True, "changed": True}
    assert r.meta["prior"] == {"unschedulable": False}
    assert k8s.requests[-1].body["spec"] == {"unschedulable": True}
    assert k8s.requests[-1].authorization == "Bearer tok-nodes"
    r = await _call(conn, "uncordon_node", node="worker-1")
    assert r.meta["prior"] == {"unschedulable": True} and r.content["unschedulable"] is False
    assert k8s.requests[-1].body["spec"] == {"unschedulable": None}  # field removed, as kubectl
    assert "unschedulable" not in k8s.nodes["worker-1"]["spec"]
    # already cordoned: nothing to patch
    before = len(k8s.requests)
    r = await _call(conn, "cordon_node", node="worker-2")
    assert r.content["changed"] is False and r.meta["prior"] == {"unschedulable": True}
    assert [q.method for q in k8s.requests[before:]] == ["GET"]


async def test_node_tools_need_a_node_scope(kubeconfig: Path, k8s: FakeKubernetes) -> None:
    c = KubernetesConnector(_settings(kubeconfig, node_scope=None), ZONES)
    with pytest.raises(Forbidden, match="node_scope"):
        await _call(c, "cordon_node", node="worker-1")
    assert k8s.requests == []


async def test_delete_pod_records_the_pod_and_pins_its_uid(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    uid = k8s.pods[("team-a", POD)]["metadata"]["uid"]
    args = {"namespace": "team-a", "pod": POD}
    preview = await conn.dry_run("kubernetes.delete_pod", args, _ctx())
    assert preview is not None and preview["owner"] == "ReplicaSet/web-7d4b9c"
    assert ("team-a", POD) in k8s.pods
    r = await _call(conn, "delete_pod", namespace="team-a", pod=POD, grace_period_seconds=0)
    assert r.content == {
        "namespace": "team-a",
        "pod": POD,
        "deleted": True,
        "owner": "ReplicaSet/web-7d4b9c",
    }
    assert r.meta["prior"]["node"] == "worker-1" and r.meta["prior"]["status"] == "Running"
    req = k8s.requests[-1]
    assert (req.method, req.path) == ("DELETE", f"/api/v1/namespaces/team-a/pods/{POD}")
    assert req.content_type == "application/json"
    assert req.body == {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
    assert ("team-a", POD) not in k8s.pods
    r = await _call(conn, "delete_pod", namespace="team-a", pod=POD)
    assert r.is_error and r.content["status"] == 404


# --- refusals and failures --------------------------------------------------------------


async def test_namespace_outside_every_scope_is_refused(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    with pytest.raises(Forbidden) as err:
        await _call(conn, "delete_pod", namespace="kube-system", pod="coredns-1")
    assert err.value.detail == (
        "namespace 'kube-system' is not in any kubernetes scope (configured: prod, team-a, team-b)"
    )
    with pytest.raises(Forbidden):
        await conn.dry_run(
            "kubernetes.scale_deployment",
            {"namespace": "other", "deployment": "web", "replicas": 1},
            _ctx(),
        )
    assert k8s.requests == []


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("list_pods", {"namespace": "Team-A"}, "namespace"),
        ("list_pods", {"namespace": "team-a; rm -rf /"}, "namespace"),
        ("list_pods", {"namespace": "-n"}, "namespace"),
        ("list_pods", {"namespace": "a" * 64}, "namespace"),
        ("describe_pod", {"namespace": "team-a", "pod": "../../etc/passwd"}, "pod"),
        ("describe_pod", {"namespace": "team-a", "pod": "web_1"}, "pod"),
        (
            "scale_deployment",
            {"namespace": "team-a", "deployment": "--all", "replicas": 1},
            "deployment",
        ),
        ("cordon_node", {"node": "worker-1."}, "node"),
        ("pod_logs", {"namespace": "team-a", "pod": POD, "container": "a.b"}, "container"),
        ("list_pods", {"namespace": "team-a", "label_selector": "app=$(id)"}, "label_selector"),
        ("list_events", {"namespace": "team-a", "object_name": "x/y"}, "object_name"),
        ("describe_pod", {"namespace": "team-a", "pod": 7}, "pod"),
    ],
)
async def test_invalid_names_never_reach_the_api(
    conn: KubernetesConnector, k8s: FakeKubernetes, op: str, args: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        await conn.call(f"kubernetes.{op}", args, _ctx())
    assert err.value.errors and err.value.errors[0]["field"] == field
    assert err.value.detail.startswith(f"{field} ")
    assert ("RFC 1123" in err.value.detail) == (field != "label_selector")
    if op in ("scale_deployment", "cordon_node"):
        with pytest.raises(ValidationFailed):
            await conn.dry_run(f"kubernetes.{op}", args, _ctx())
    assert k8s.requests == []


async def test_token_scope_uses_its_own_service_account(
    conn: KubernetesConnector, k8s: FakeKubernetes
) -> None:
    # prod's token comes from the vault; the kubeconfig user (team-a) is not used
    r = await _call(conn, "list_deployments", namespace="prod")
    assert r.content["deployments"][0]["name"] == "checkout"
    assert k8s.requests[-1].authorization == "Bearer tok-prod"
    SECRETS["secret://k8s-prod"] = "revoked"
    try:
        r = await _call(conn, "list_deployments", namespace="prod")
    finally:
        SECRETS["secret://k8s-prod"] = "tok-prod"
    assert r.is_error and r.content == {
        "error": "Kubernetes API: Unauthorized",
        "status": 401,
        "reason": "Unauthorized",
    }


async def test_rbac_refusal_comes_back_as_an_error_result(
    kubeconfig: Path, k8s: FakeKubernetes
) -> None:
    # a misconfigured scope: team-b's namespace with team-a's service account
    scopes = [{"namespace": "team-b", "context": "team-a"}]
    c = KubernetesConnector(_settings(kubeconfig, scopes=scopes), ZONES)
    r = await _call(c, "list_pods", namespace="team-b")
    assert r.is_error and r.content["status"] == 403
    assert 'cannot list resource "pods"' in r.content["error"]
    await c.aclose()


async def test_unreachable_api_server(k8s: FakeKubernetes, tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    kc = k8s.write_kubeconfig(tmp_path / "kc", {"team-a": "tok-team-a"}, "team-a")
    kc.write_text(kc.read_text().replace(k8s.url, f"http://127.0.0.1:{port}"))
    c = KubernetesConnector(_settings(kc, node_scope=None), ZONES)
    r = await _call(c, "list_pods", namespace="team-a")
    assert r.is_error and r.content["error"].startswith(
        f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}"
    )
    await c.aclose()


async def test_misconfigured_scope_is_an_error_result(tmp_path: Path) -> None:
    c = KubernetesConnector(_settings(tmp_path / "missing"), ZONES)
    r = await _call(c, "list_pods", namespace="team-a")
    assert r.is_error and "does not exist" in r.content["error"]


# --- through the governed pipeline --------------------------------------------------------


async def test_through_the_tool_service(
    harness: AppHarness, kubeconfig: Path, k8s: FakeKubernetes
) -> None:
    h = harness
    conn = KubernetesConnector(_settings(kubeconfig), ZONES)
    for spec in conn.tools():
        h.runtime.tools.tools[spec.name] = (spec, conn)
    await h.runtime.vault.put("default", "k8s-prod", "tok-prod", actor="t")
    agent = (
        await h.runtime.identity.keys.create(
            tenant="default",
            name="k8s-agent",
            kind="agent",
            roles=["agent"],
            scopes=[],
            created_by="t",
            expires_at=None,
        )
    ).key

    async def call(tool: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
        r = await h.client.post(
            f"/api/v1/tools/{tool}/call", json={"arguments": args, **extra}, headers=h.auth(agent)
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    out = await call("kubernetes.list_pods", {"namespace": "team-a"})
    assert out["status"] == "executed" and out["gate"] == "L0"
    assert out["result"]["count"] == 3
    # a write at L1 runs and the audit record keeps the prior state
    out = await call(
        "kubernetes.scale_deployment", {"namespace": "team-a", "deployment": "web", "replicas": 3}
    )
    assert out["status"] == "executed" and out["gate"] == "L1"
    audit = (
        await h.client.get("/api/v1/audit", params={"action_prefix": "tool.call"}, headers=h.auth())
    ).json()
    done = next(e for e in audit["items"] if e["action"] == "tool.call")
    assert done["resource"] == "tool:kubernetes.scale_deployment"
    assert done["payload"]["prior"] == {"replicas": 2}
    # a destructive call in prod waits for a person, with a preview read from the cluster
    args = {"namespace": "prod", "pod": "checkout-5f6d-x7k2p"}
    out = await call("kubernetes.delete_pod", args, rationale="stuck")
    assert out["status"] == "pending_approval" and out["gate"] == "L2"
    assert ("prod", "checkout-5f6d-x7k2p") in k8s.pods
    req = await h.runtime.approvals.get("default", out["approval_id"])
    assert req.preview["owner"] == "ReplicaSet/checkout-5f6d"
    await h.runtime.approvals.decide(APPROVER, out["approval_id"], approve=True)
    held = getattr(h.runtime, "held", None)  # the server may run approved calls itself
    if held is not None:
        await held.wait("default", out["approval_id"], 10, poll=0.05)
    # executes now, or returns the one execution's stored result
    out = await call("kubernetes.delete_pod", args, approval_id=out["approval_id"])
    assert out["status"] == "executed" and ("prod", "checkout-5f6d-x7k2p") not in k8s.pods
    assert [r.authorization for r in k8s.requests if r.method == "DELETE"] == ["Bearer tok-prod"]
    # out of scope: refused by the connector, surfaced as 403
    r = await h.client.post(
        "/api/v1/tools/kubernetes.list_pods/call",
        json={"arguments": {"namespace": "kube-system"}},
        headers=h.auth(agent),
    )
    assert r.status_code == 403 and "not in any kubernetes scope" in r.text
    # node tools need the operator role, which this agent does not hold
    r = await h.client.post(
        "/api/v1/tools/kubernetes.uncordon_node/call",
        json={"arguments": {"node": "worker-2"}},
        headers=h.auth(agent),
    )
    assert r.status_code == 403 and k8s.nodes["worker-2"]["spec"]["unschedulable"] is True
    await conn.aclose()
