"""A fake Kubernetes API server speaking the real REST wire format, over real HTTP.

No real API server can run here, so this one serves the few endpoints OpsGate's kubernetes
connector uses, with the paths, verbs, content types, query parameters and JSON objects of the
real one (`kind`, `apiVersion`, `metadata`, `spec`, `status`; `metav1.Status` on errors):

    GET    /api/v1/namespaces/{ns}/pods[/{name}]          (labelSelector, limit)
    DELETE /api/v1/namespaces/{ns}/pods/{name}            (DeleteOptions: uid precondition, grace)
    GET    /api/v1/namespaces/{ns}/pods/{name}/log        (container, tailLines, limitBytes, previous)
    GET    /api/v1/namespaces/{ns}/events                 (fieldSelector, limit)
    GET    /apis/apps/v1/namespaces/{ns}/deployments[/{name}]
    PATCH  /apis/apps/v1/namespaces/{ns}/deployments/{name}         (strategic-merge / merge patch)
    GET/PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale (autoscaling/v1 Scale)
    GET/PATCH /api/v1/nodes/{name}

Bearer tokens map to service accounts with namespace grants (a tiny RBAC: 401 for an unknown
token, 403 with the real message outside the grant). A `metadata.resourceVersion` in a patch is
a precondition (409 on mismatch), as on the real server. Every request is recorded.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import yaml

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    authorization: str | None
    body: Any


@dataclass(frozen=True)
class Account:
    user: str  # e.g. system:serviceaccount:team-a:opsgate
    namespaces: frozenset[str] = frozenset()
    nodes: bool = False


class ApiStatus(Exception):
    """Answered as a metav1.Status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def ts(ago: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386); for maps a strategic merge patch does the same."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)


def _labels_match(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        m = re.fullmatch(r"([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)", term)
        if m is None:
            raise ApiStatus(400, "BadRequest", f"unable to parse requirement: {term!r}")
        key, op, value = m.groups()
        if (labels.get(key) == value) != (op != "!="):
            return False
    return True


class FakeKubernetes:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        # (namespace, pod, container, previous) -> lines
        self.logs: dict[tuple[str, str, str, bool], list[str]] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._rv = 1000
        # called (under the lock) after each request is handled: tests use it to race writers
        self.after: Callable[[Recorded], None] | None = None
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def write_kubeconfig(self, path: Path, tokens: dict[str, str], current: str) -> Path:
        """A kubeconfig with one context (and user) per service-account token."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": f"sa-{ctx}", "user": {"token": tok}} for ctx, tok in tokens.items()],
            "contexts": [
                {"name": ctx, "context": {"cluster": "fake", "user": f"sa-{ctx}"}} for ctx in tokens
            ],
            "current-context": current,
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # --- objects ------------------------------------------------------------------------

    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _meta(self, name: str, namespace: str | None, age: timedelta, **kw: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "uid": f"uid-{name}-{self._rv}",
            "resourceVersion": self.next_rv(),
            "creationTimestamp": ts(age),
            **kw,
        }
        if namespace is not None:
            meta["namespace"] = namespace
        return meta

    def add_pod(
        self,
        ns: str,
        name: str,
        *,
        node: str = "worker-1",
        containers: tuple[str, ...] = ("app",),
        image: str = "registry.example/app:1.4.2",
        phase: str = "Running",
        waiting: str | None = None,
        restarts: int = 0,
        owner: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        refs = []
        if owner:
            refs = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": owner,
                    "uid": f"uid-{owner}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        statuses = []
        for c in containers:
            state: dict[str, Any] = {"running": {"startedAt": ts(timedelta(hours=2))}}
            if waiting:
                state = {"waiting": {"reason": waiting, "message": "back-off restarting"}}
            statuses.append(
                {
                    "name": c,
                    "image": image,
                    "imageID": f"{image}@sha256:{'0' * 64}",
                    "ready": waiting is None,
                    "restartCount": restarts,
                    "started": waiting is None,
                    "state": state,
                    "lastState": (
                        {"terminated": {"exitCode": 1, "reason": "Error"}} if restarts else {}
                    ),
                }
            )
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": self._meta(
                name,
                ns,
                timedelta(days=3),
                labels=labels or {"app": name.split("-")[0]},
                ownerReferences=refs,
            ),
            "spec": {
                "nodeName": node,
                "serviceAccountName": "default",
                "restartPolicy": "Always",
                "containers": [
                    {
                        "name": c,
                        "image": image,
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                    }
                    for c in containers
                ],
            },
            "status": {
                "phase": phase,
                "podIP": "10.244.1.17",
                "hostIP": "192.168.10.11",
                "qosClass": "Burstable",
                "startTime": ts(timedelta(days=3)),
                "conditions": [
                    {"type": "Ready", "status": "False" if waiting else "True"},
                    {"type": "PodScheduled", "status": "True"},
                ],
                "containerStatuses": statuses,
            },
        }
        self.pods[(ns, name)] = pod
        return pod

    def add_deployment(
        self, ns: str, name: str, *, replicas: int = 2, ready: int = 2, image: str = "app:1.4.2"
    ) -> dict[str, Any]:
        dep = {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {
                **self._meta(name, ns, timedelta(days=40), labels={"app": name}),
                "generation": 7,
                "annotations": {"deployment.kubernetes.io/revision": "7"},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": name,
                                "image": image,
                                "resources": {"requests": {"cpu": "250m"}},
                            }
                        ]
                    },
                },
            },
            "status": {
                "observedGeneration": 7,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            },
        }
        self.deployments[(ns, name)] = dep
        return dep

    def add_node(self, name: str, *, unschedulable: bool = False) -> dict[str, Any]:
        spec: dict[str, Any] = {"podCIDR": "10.244.1.0/24"}
        if unschedulable:
            spec["unschedulable"] = True
        node = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": self._meta(
                name, None, timedelta(days=90), labels={"kubernetes.io/hostname": name}
            ),
            "spec": spec,
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                "nodeInfo": {"kubeletVersion": "v1.31.2"},
            },
        }
        self.nodes[name] = node
        return node

    def add_event(
        self,
        ns: str,
        kind: str,
        obj: str,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        ago: timedelta = timedelta(minutes=5),
        count: int = 1,
    ) -> None:
        name = f"{obj}.{len(self.events):08x}"
        self.events.append(
            {
                "kind": "Event",
                "apiVersion": "v1",
                "metadata": self._meta(name, ns, ago),
                "involvedObject": {"kind": kind, "namespace": ns, "name": obj, "apiVersion": "v1"},
                "reason": reason,
                "message": message,
                "source": {"component": "kubelet"},
                "firstTimestamp": ts(ago + timedelta(minutes=10)),
                "lastTimestamp": ts(ago),
                "count": count,
                "type": type_,
            }
        )

    # --- request handling -----------------------------------------------------------------

    def authorize(self, auth: str | None, verb: str, group: str, res: str, ns: str | None) -> None:
        token = auth[7:] if auth and auth.startswith("Bearer ") else None
        account = self.accounts.get(token or "")
        if account is None:
            raise ApiStatus(401, "Unauthorized", "Unauthorized")
        if not (account.nodes if ns is None else ns in account.namespaces):
            where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            raise ApiStatus(
                403,
                "Forbidden",
                f'{res} is forbidden: User "{account.user}" cannot {verb} resource "{res}" '
                f'in API group "{group}"{where}',
            )

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        ctype: str | None,
        body: Any,
        auth: str | None,
    ) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(Recorded(method, path, query, ctype, auth, copy.deepcopy(body)))
            for pattern, group, res, handler in _ROUTES:
                m = re.fullmatch(pattern, path)
                if m is None:
                    continue
                ns, name = m.groupdict().get("ns"), m.groupdict().get("name")
                verbs = {"GET": "get" if name else "list", "PATCH": "patch", "DELETE": "delete"}
                if method not in verbs:
                    raise ApiStatus(405, "MethodNotAllowed", f"{method} is not supported")
                self.authorize(auth, verbs[method], group, res, ns)
                result: tuple[int, Any] = getattr(self, handler)(
                    method, ns, name, query, ctype, body
                )
                if self.after is not None:
                    self.after(self.requests[-1])
                return result
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")

    def _get(self, store: dict[Any, dict[str, Any]], key: Any, res: str, name: str) -> Any:
        obj = store.get(key)
        if obj is None:
            raise ApiStatus(404, "NotFound", f'{res} "{name}" not found')
        return obj

    def _patch(self, obj: dict[str, Any], ctype: str | None, body: Any, res: str) -> None:
        if ctype == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiStatus(
                    400,
                    "BadRequest",
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                )
            raise ApiStatus(415, "UnsupportedMediaType", "the fake applies merge patches only")
        if ctype not in PATCH_TYPES:
            raise ApiStatus(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: " + ", ".join(PATCH_TYPES),
            )
        if not isinstance(body, dict):
            raise ApiStatus(400, "BadRequest", "the patch must be a JSON object")
        want_rv = (body.get("metadata") or {}).pop("resourceVersion", None)
        if want_rv is not None and want_rv != obj["metadata"]["resourceVersion"]:
            raise ApiStatus(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res} "{obj["metadata"]["name"]}": the object '
                "has been modified; please apply your changes to the latest version and try again",
            )
        before = copy.deepcopy(obj.get("spec"))
        merge(obj, body)
        if obj.get("spec") != before and "generation" in obj["metadata"]:
            obj["metadata"]["generation"] += 1
        obj["metadata"]["resourceVersion"] = self.next_rv()

    def _list(self, kind: str, items: list[dict[str, Any]], query: dict[str, str]) -> Any:
        sel = query.get("labelSelector")
        if sel:
            items = [i for i in items if _labels_match(i["metadata"].get("labels") or {}, sel)]
        limit = int(query.get("limit", "0") or 0)
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if limit and len(items) > limit:
            items, meta["continue"] = items[:limit], "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"
        return {"kind": kind, "apiVersion": "v1", "metadata": meta, "items": items}

    def _pods(self, method: str, ns: str, name: str | None, query: dict[str, str], *_: Any) -> Any:
        return 200, self._list("PodList", [p for (n, _), p in self.pods.items() if n == ns], query)

    def _pod(
        self, method: str, ns: str, name: str, query: dict[str, str], ctype: str | None, body: Any
    ) -> Any:
        pod = self._get(self.pods, (ns, name), "pods", name)
        if method == "GET":
            return 200, pod
        pre = ((body or {}).get("preconditions") or {}).get("uid")
        if pre is not None and pre != pod["metadata"]["uid"]:
            raise ApiStatus(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {pre}, UID in object meta: "
                f"{pod['metadata']['uid']}",
            )
        del self.pods[(ns, name)]
        pod["metadata"]["deletionTimestamp"] = ts()
        return 200, pod

    def _log(self, method: str, ns: str, name: str, query: dict[str, str], *_: Any) -> Any:
        pod = self._get(self.pods, (ns, name), "pods", name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container")
        if container is None:
            if len(names) > 1:
                raise ApiStatus(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise ApiStatus(400, "BadRequest", f"container {container} is not valid for pod {name}")
        lines = self.logs.get((ns, name, container, query.get("previous") == "true"), [])
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"]) :] if int(query["tailLines"]) else []
        data = "".join(f"{line}\n" for line in lines).encode()
        if "limitBytes" in query:
            data = data[: int(query["limitBytes"])]
        return 200, data

    def _events(self, method: str, ns: str, name: None, query: dict[str, str], *_: Any) -> Any:
        items = [e for e in self.events if e["metadata"]["namespace"] == ns]
        for term in filter(None, query.get("fieldSelector", "").split(",")):
            key, _sep, value = term.partition("=")
            if key not in _EVENT_FIELDS:
                raise ApiStatus(400, "BadRequest", f'"{key}" is not a known field selector')
            items = [e for e in items if _EVENT_FIELDS[key](e) == value]
        return 200, self._list("EventList", items, query)

    def _deps(self, method: str, ns: str, name: str | None, query: dict[str, str], *_: Any) -> Any:
        items = [d for (n, _), d in self.deployments.items() if n == ns]
        out = self._list("DeploymentList", items, query)
        out["apiVersion"] = "apps/v1"
        return 200, out

    def _dep(
        self, method: str, ns: str, name: str, query: dict[str, str], ctype: str | None, body: Any
    ) -> Any:
        dep = self._get(self.deployments, (ns, name), "deployments.apps", name)
        if method == "PATCH":
            self._patch(dep, ctype, body, "deployments.apps")
        return 200, dep

    def _scale(
        self, method: str, ns: str, name: str, query: dict[str, str], ctype: str | None, body: Any
    ) -> Any:
        dep = self._get(self.deployments, (ns, name), "deployments.apps", name)
        if method == "PATCH":
            if not isinstance(body, dict):
                raise ApiStatus(400, "BadRequest", "the patch must be a JSON object")
            replicas = (body.get("spec") or {}).get("replicas")
            patch = {"metadata": body.get("metadata") or {}, "spec": {"replicas": replicas}}
            self._patch(dep, ctype, patch, "deployments.apps")
        meta = dep["metadata"]
        labels = dep["spec"]["selector"]["matchLabels"]
        return 200, {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {
                "replicas": dep["status"]["replicas"],
                "selector": ",".join(f"{k}={v}" for k, v in labels.items()),
            },
        }

    def _node(
        self, method: str, ns: None, name: str, query: dict[str, str], ctype: str | None, body: Any
    ) -> Any:
        node = self._get(self.nodes, name, "nodes", name)
        if method == "PATCH":
            self._patch(node, ctype, body, "nodes")
        return 200, node


_EVENT_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "type": lambda e: e["type"],
    "reason": lambda e: e["reason"],
    "involvedObject.name": lambda e: e["involvedObject"]["name"],
    "involvedObject.kind": lambda e: e["involvedObject"]["kind"],
    "involvedObject.namespace": lambda e: e["involvedObject"]["namespace"],
}
_SEG = r"[^/]+"
# path pattern, API group, resource (as RBAC names it), handler method
_ROUTES = [
    (rf"/api/v1/namespaces/(?P<ns>{_SEG})/pods", "", "pods", "_pods"),
    (rf"/api/v1/namespaces/(?P<ns>{_SEG})/pods/(?P<name>{_SEG})", "", "pods", "_pod"),
    (rf"/api/v1/namespaces/(?P<ns>{_SEG})/pods/(?P<name>{_SEG})/log", "", "pods/log", "_log"),
    (rf"/api/v1/namespaces/(?P<ns>{_SEG})/events", "", "events", "_events"),
    (rf"/apis/apps/v1/namespaces/(?P<ns>{_SEG})/deployments", "apps", "deployments", "_deps"),
    (
        rf"/apis/apps/v1/namespaces/(?P<ns>{_SEG})/deployments/(?P<name>{_SEG})",
        "apps",
        "deployments",
        "_dep",
    ),
    (
        rf"/apis/apps/v1/namespaces/(?P<ns>{_SEG})/deployments/(?P<name>{_SEG})/scale",
        "apps",
        "deployments/scale",
        "_scale",
    ),
    (rf"/api/v1/nodes/(?P<name>{_SEG})", "", "nodes", "_node"),
]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubernetes
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: Any) -> None:
        return None

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = self.headers.get("Content-Type")
        body: Any = None
        try:
            if raw:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise ApiStatus(400, "BadRequest", "the request body is not JSON") from None
            code, out = self.fake.handle(
                self.command, parts.path, query, ctype, body, self.headers.get("Authorization")
            )
        except ApiStatus as exc:
            code, out = exc.code, exc.body()
        data = out if isinstance(out, bytes) else orjson.dumps(out)
        self.send_response(code)
        plain = isinstance(out, bytes)
        self.send_header("Content-Type", "text/plain" if plain else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve


def seeded() -> FakeKubernetes:
    """A small cluster: two team namespaces, prod, two nodes, events and logs."""
    k = FakeKubernetes()
    k.accounts = {
        "tok-team-a": Account("system:serviceaccount:team-a:opsgate", frozenset({"team-a"})),
        "tok-team-b": Account("system:serviceaccount:team-b:opsgate", frozenset({"team-b"})),
        "tok-prod": Account("system:serviceaccount:prod:opsgate", frozenset({"prod"})),
        "tok-nodes": Account("system:serviceaccount:kube-system:opsgate-nodes", nodes=True),
    }
    k.add_node("worker-1")
    k.add_node("worker-2", unschedulable=True)
    k.add_deployment("team-a", "web", replicas=2, ready=1)
    k.add_deployment("team-a", "api", replicas=3, ready=3, image="api:2.0.0")
    k.add_pod("team-a", "web-7d4b9c-abcde", owner="web-7d4b9c", labels={"app": "web"})
    k.add_pod(
        "team-a",
        "web-7d4b9c-fghij",
        owner="web-7d4b9c",
        node="worker-2",
        waiting="CrashLoopBackOff",
        restarts=5,
        labels={"app": "web"},
    )
    k.add_pod("team-a", "api-0", containers=("app", "sidecar"), labels={"app": "api"})
    k.add_pod("team-b", "db-0", labels={"app": "db"})
    k.add_deployment("prod", "checkout", replicas=4, ready=4)
    k.add_pod("prod", "checkout-5f6d-x7k2p", owner="checkout-5f6d", labels={"app": "checkout"})
    k.add_event(
        "team-a",
        "Pod",
        "web-7d4b9c-abcde",
        "Scheduled",
        "Successfully assigned",
        ago=timedelta(hours=2),
    )
    k.add_event(
        "team-a",
        "Pod",
        "web-7d4b9c-fghij",
        "BackOff",
        "Back-off restarting failed container app",
        type_="Warning",
        ago=timedelta(minutes=1),
        count=42,
    )
    k.add_event(
        "team-a",
        "Deployment",
        "web",
        "ScalingReplicaSet",
        "Scaled up replica set web-7d4b9c to 2",
        ago=timedelta(minutes=30),
    )
    k.add_event("team-b", "Pod", "db-0", "Pulled", "Container image pulled")
    k.logs[("team-a", "web-7d4b9c-abcde", "app", False)] = [
        f"2025-01-01T00:00:00Z INFO request {i} served" for i in range(5000)
    ]
    k.logs[("team-a", "web-7d4b9c-fghij", "app", False)] = [
        f"{i:05d} " + "x" * 200 for i in range(3000)
    ]
    k.logs[("team-a", "web-7d4b9c-fghij", "app", True)] = ["panic: nil map", "exit status 1"]
    k.logs[("team-a", "api-0", "sidecar", False)] = ["sidecar ready"]
    return k
