"""`kubernetes` connector: workloads, nodes and diagnostics through the official client.

No shell and no kubectl: every operation is one or two REST calls made by the official client
(which is synchronous, so calls run in a worker thread). Each namespace scope has its own
service account and its own `ApiClient`; a namespace outside every scope is refused before
any request, and so is any name that is not an RFC 1123 label or subdomain. Results are
compact summaries, never the raw objects.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsgate.errors import Forbidden, ValidationFailed
from opsgate.tools.catalog import ToolSpec, ZoneSpec, load_tools
from opsgate.tools.connectors.base import CallContext, ConnectorStatus, ToolResult

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SELECTOR = re.compile(r"^[A-Za-z0-9._/=!,() -]{1,256}$")
MAX_LOG_LINES = 2000
MAX_LOG_BYTES = 128 * 1024
MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_MESSAGE = 500
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
_VAULT_REF = r"^secret://[a-z0-9][a-z0-9._-]{0,63}$"
# argument -> (pattern, what it must be, max length)
_NAMES: dict[str, tuple[re.Pattern[str], str, int]] = {
    "namespace": (DNS_LABEL, "an RFC 1123 DNS label", 63),
    "container": (DNS_LABEL, "an RFC 1123 DNS label", 63),
    "pod": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "deployment": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "node": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "object_name": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "label_selector": (SELECTOR, "a label selector (letters, digits and . _ / = ! , ( ) -)", 256),
}
_NODE_OPS = {"cordon_node", "uncordon_node"}
_WRITE_OPS = {"scale_deployment", "rollout_restart", "cordon_node", "uncordon_node", "delete_pod"}


class KubernetesCredential(BaseModel):
    """The service account one scope acts as."""

    model_config = ConfigDict(extra="forbid")

    # A kubeconfig file holding this scope's service account (default: the connector's).
    kubeconfig: Path | None = None
    # The kubeconfig context to use (default: the connector's context, else the file's current).
    context: str | None = None
    # The service account's bearer token as a vault reference (`secret://name`), resolved in the
    # caller's tenant at each call. The API server and CA still come from the kubeconfig or the
    # in-cluster config; that config's own user credentials are then not used.
    token: str | None = Field(None, pattern=_VAULT_REF)

    @model_validator(mode="after")
    def _own_credential(self) -> KubernetesCredential:
        if self.kubeconfig is None and self.context is None and self.token is None:
            raise ValueError(
                "name this scope's own service account: token (secret://...), kubeconfig or context"
            )
        return self


class KubernetesScope(KubernetesCredential):
    # The namespace this service account may act in; calls for any other namespace are refused.
    namespace: str = Field(pattern=DNS_LABEL.pattern, max_length=63)


class KubernetesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Off by default: the connector exposes no tools and reports "disabled".
    enabled: bool = False
    # The cluster's kubeconfig (default: the client's own default, $KUBECONFIG or ~/.kube/config).
    kubeconfig: Path | None = None
    # The kubeconfig context (default: the file's current-context).
    context: str | None = None
    # Use the pod's in-cluster config (API server and CA) instead of a kubeconfig file.
    in_cluster: bool = False
    # One service account per namespace: the only namespaces any tool may touch.
    scopes: list[KubernetesScope] = Field(default_factory=list)
    # The service account for the cluster-scoped node tools (cordon/uncordon); unset = refused.
    node_scope: KubernetesCredential | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesSettings:
        if self.in_cluster and self.kubeconfig is not None:
            raise ValueError("set either in_cluster or kubeconfig, not both")
        seen: set[str] = set()
        for s in self.scopes:
            if s.namespace in seen:
                raise ValueError(f"namespace {s.namespace!r} has more than one scope")
            seen.add(s.namespace)
        return self


class _ApiError(Exception):
    """A failed Kubernetes request; becomes an error result, not an exception, at the edge."""

    def __init__(
        self, message: str, status: int | None = None, reason: str = "", *, down: bool = False
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.reason = message, status, reason
        # the API server is unreachable or failing (not: it refused this request)
        self.down = down or (status is not None and status >= 500)

    def content(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.status is not None:
            out["status"] = self.status
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_api(cls, exc: ApiException) -> _ApiError:
        status = int(exc.status) if exc.status else None
        message, reason = str(exc.reason or "request failed"), ""
        try:
            body = orjson.loads(exc.body or b"")
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):  # a metav1.Status
            message = str(body.get("message") or message)
            reason = str(body.get("reason") or "")
        return cls(f"Kubernetes API: {message[:MAX_MESSAGE]}", status, reason)


def _fetch(fn: Callable[..., Any], cap: int, kw: dict[str, Any]) -> tuple[bytes, bool]:
    resp = fn(_preload_content=False, **kw)
    try:
        data: bytes = resp.read(cap + 1)
        cut = len(data) > cap
        if cut:
            resp.close()  # do not read (or reuse) the rest
        return data[:cap], cut
    finally:
        resp.release_conn()


@dataclass(frozen=True)
class _Session:
    """One scope's client plus, for token scopes, the per-call bearer token."""

    core: k8s.CoreV1Api
    apps: k8s.AppsV1Api
    auth: dict[str, str] | None
    timeout: float
    host: str

    async def raw(self, fn: Callable[..., Any], cap: int, **kw: Any) -> tuple[bytes, bool]:
        kw["_request_timeout"] = self.timeout
        if self.auth is not None:
            kw["_request_auth"] = self.auth
        try:
            return await asyncio.to_thread(_fetch, fn, cap, kw)
        except ApiException as exc:
            raise _ApiError.from_api(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _ApiError(
                f"cannot reach the Kubernetes API server at {self.host} ({type(exc).__name__})",
                down=True,
            ) from None

    async def json(self, fn: Callable[..., Any], **kw: Any) -> dict[str, Any]:
        data, cut = await self.raw(fn, MAX_JSON_BYTES, **kw)
        if cut:
            raise _ApiError(f"response larger than {MAX_JSON_BYTES} bytes; narrow the request")
        obj = orjson.loads(data)
        if not isinstance(obj, dict):
            raise _ApiError("Kubernetes API answered with something other than an object")
        return obj


def check_names(args: dict[str, Any]) -> None:
    """Refuse any name that is not an RFC 1123 label/subdomain (before any request)."""
    for key, (pattern, what, max_len) in _NAMES.items():
        if key not in args:
            continue
        value = args[key]
        if not isinstance(value, str) or len(value) > max_len or not pattern.match(value):
            shown = repr(value)[:80]
            msg = f"{key} {shown} is not {what} of at most {max_len} characters"
            raise ValidationFailed(msg, errors=[{"field": key, "message": msg}])


class KubernetesConnector:
    name = "kubernetes"

    def __init__(self, settings: KubernetesSettings, zones: dict[str, ZoneSpec]) -> None:
        self.settings = settings
        self._tools = load_tools(Path(__file__).with_name("kubernetes.yaml"), zones)
        self._names = {t.name for t in self._tools}
        self._scopes = {s.namespace: s for s in settings.scopes}
        self._clients: dict[str, tuple[k8s.ApiClient, str]] = {}
        self._lock = asyncio.Lock()

    def tools(self) -> list[ToolSpec]:
        return list(self._tools) if self.settings.enabled else []

    async def status(self) -> ConnectorStatus:
        if not self.settings.enabled:
            return ConnectorStatus("disabled", "tools.kubernetes.enabled is false")
        if not self.settings.scopes:
            return ConnectorStatus("failed", "no scopes: configure at least one namespace scope")
        creds: list[tuple[str, KubernetesCredential]] = [
            (f"scope {s.namespace}", s) for s in self.settings.scopes
        ]
        if self.settings.node_scope is not None:
            creds.append(("node_scope", self.settings.node_scope))
        for label, cred in creds:
            try:
                await asyncio.to_thread(self._configuration, cred)
            except Exception as exc:  # status never raises: it reports why
                return ConnectorStatus("failed", f"{label}: {_describe(exc)}")
        return ConnectorStatus("ready")

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for api, _ in clients.values():
            await asyncio.to_thread(api.close)

    async def call(self, tool: str, args: dict[str, Any], ctx: CallContext) -> ToolResult:
        op = self._op(tool)
        try:
            session = await self._session(op, args, ctx)
            handler: Callable[[_Session, dict[str, Any]], Awaitable[ToolResult]] = getattr(
                self, f"_{op}"
            )
            return await handler(session, args)
        except _ApiError as exc:
            # only an unreachable or failing API server counts against the scope's breaker
            return ToolResult(exc.content(), is_error=True, meta={"target_failed": exc.down})

    async def dry_run(
        self, tool: str, args: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any] | None:
        op = self._op(tool)
        if op not in _WRITE_OPS:
            return None
        try:
            session = await self._session(op, args, ctx)
            preview: Callable[[_Session, dict[str, Any]], Awaitable[dict[str, Any]]] = getattr(
                self, f"_preview_{op}"
            )
            return await preview(session, args)
        except _ApiError as exc:
            return exc.content()

    def target(self, tool: str, args: dict[str, Any]) -> str:
        """The scope a call goes to (the tool service keeps one circuit breaker per target)."""
        if tool.split(".", 1)[-1] in _NODE_OPS:
            return "nodes"
        return f"ns/{args.get('namespace')}"

    # --- scopes and clients -------------------------------------------------------------

    def _op(self, tool: str) -> str:
        if tool not in self._names:
            raise ValidationFailed(f"unknown kubernetes tool {tool!r}")
        return tool.split(".", 1)[1]

    async def _session(self, op: str, args: dict[str, Any], ctx: CallContext) -> _Session:
        if not self.settings.enabled:
            raise _ApiError("the kubernetes connector is disabled (tools.kubernetes.enabled)")
        check_names(args)
        cred: KubernetesCredential
        if op in _NODE_OPS:
            if self.settings.node_scope is None:
                raise Forbidden(
                    f"{op} needs tools.kubernetes.node_scope (a service account for nodes), "
                    "which is not configured"
                )
            key, cred = "nodes", self.settings.node_scope
        else:
            ns = str(args["namespace"])
            scope = self._scopes.get(ns)
            if scope is None:
                allowed = ", ".join(sorted(self._scopes)) or "none"
                raise Forbidden(
                    f"namespace {ns!r} is not in any kubernetes scope (configured: {allowed})"
                )
            key, cred = f"ns/{ns}", scope
        api, host = await self._client(key, cred)
        auth = None
        if cred.token is not None:
            token = await ctx.resolve_secret(cred.token)
            auth = {
                "in": "header",
                "type": "api_key",
                "key": "authorization",
                "value": f"Bearer {token}",
            }
        return _Session(k8s.CoreV1Api(api), k8s.AppsV1Api(api), auth, ctx.timeout, host)

    async def _client(self, key: str, cred: KubernetesCredential) -> tuple[k8s.ApiClient, str]:
        async with self._lock:
            entry = self._clients.get(key)
            if entry is None:
                try:
                    cfg = await asyncio.to_thread(self._configuration, cred)
                except Exception as exc:  # config problems become a precise error result
                    raise _ApiError(f"{key}: invalid configuration: {_describe(exc)}") from None
                entry = self._clients[key] = (k8s.ApiClient(cfg), str(cfg.host))
            return entry

    def _configuration(self, cred: KubernetesCredential) -> k8s.Configuration:
        """Load one scope's configuration (blocking: file reads)."""
        cfg = k8s.Configuration()
        s = self.settings
        if cred.kubeconfig is not None:
            _readable(cred.kubeconfig)
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(cred.kubeconfig.expanduser()),
                context=cred.context,
                client_configuration=cfg,
                persist_config=False,
            )
        elif s.in_cluster:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            if s.kubeconfig is not None:
                _readable(s.kubeconfig)
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(s.kubeconfig.expanduser()) if s.kubeconfig else None,
                context=cred.context or s.context,
                client_configuration=cfg,
                persist_config=False,
            )
        if cred.token is not None:
            # only the scope's own service account may authenticate
            cfg.api_key, cfg.api_key_prefix = {}, {}
            cfg.cert_file = cfg.key_file = None
            cfg.refresh_api_key_hook = None
        cfg.retries = False  # a mutating call is never retried behind our back
        return cfg

    # --- reads --------------------------------------------------------------------------

    async def _list_pods(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns = a["namespace"]
        body = await s.json(
            s.core.list_namespaced_pod,
            namespace=ns,
            label_selector=a.get("label_selector"),
            limit=min(int(a.get("limit", 200)), 500),
        )
        now = datetime.now(UTC)
        pods = [pod_row(p, now) for p in body.get("items") or []]
        more = bool((body.get("metadata") or {}).get("continue"))
        return ToolResult({"namespace": ns, "count": len(pods), "more": more, "pods": pods})

    async def _describe_pod(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns, name = a["namespace"], a["pod"]
        p = await s.json(s.core.read_namespaced_pod, name=name, namespace=ns)
        events = await self._events(s, ns, f"involvedObject.name={name}", 10)
        return ToolResult({**pod_detail(p, datetime.now(UTC)), "events": events})

    async def _list_deployments(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns = a["namespace"]
        body = await s.json(
            s.apps.list_namespaced_deployment,
            namespace=ns,
            label_selector=a.get("label_selector"),
            limit=min(int(a.get("limit", 200)), 500),
        )
        now = datetime.now(UTC)
        rows = [deployment_row(d, now) for d in body.get("items") or []]
        more = bool((body.get("metadata") or {}).get("continue"))
        return ToolResult({"namespace": ns, "count": len(rows), "more": more, "deployments": rows})

    async def _describe_deployment(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        d = await s.json(
            s.apps.read_namespaced_deployment, name=a["deployment"], namespace=a["namespace"]
        )
        return ToolResult(deployment_detail(d, datetime.now(UTC)))

    async def _list_events(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns = a["namespace"]
        selector = ",".join(
            f"{field}={a[arg]}"
            for arg, field in (("type", "type"), ("object_name", "involvedObject.name"))
            if arg in a
        )
        if "type" in a and a["type"] not in ("Normal", "Warning"):
            raise ValidationFailed("type must be Normal or Warning")
        limit = min(int(a.get("limit", 100)), 500)
        events = await self._events(s, ns, selector or None, limit)
        return ToolResult({"namespace": ns, "count": len(events), "events": events})

    async def _events(
        self, s: _Session, ns: str, selector: str | None, limit: int
    ) -> list[dict[str, Any]]:
        # The API returns events in storage order; fetch a page and keep the newest.
        body = await s.json(
            s.core.list_namespaced_event, namespace=ns, field_selector=selector, limit=1000
        )
        items = sorted(body.get("items") or [], key=_event_time, reverse=True)[:limit]
        now = datetime.now(UTC)
        return [event_row(e, now) for e in items]

    async def _pod_logs(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns, name = a["namespace"], a["pod"]
        tail = max(1, min(int(a.get("tail_lines", 200)), MAX_LOG_LINES))
        kw: dict[str, Any] = {"tail_lines": tail, "limit_bytes": MAX_LOG_BYTES}
        if "container" in a:
            kw["container"] = a["container"]
        if a.get("previous"):
            kw["previous"] = True
        if "since_seconds" in a:
            kw["since_seconds"] = int(a["since_seconds"])
        data, cut = await s.raw(
            s.core.read_namespaced_pod_log, MAX_LOG_BYTES, name=name, namespace=ns, **kw
        )
        cut = cut or len(data) >= MAX_LOG_BYTES
        if cut and b"\n" in data:
            data = data[: data.rindex(b"\n") + 1]  # no half line at the cut
        lines = data.decode("utf-8", errors="replace").splitlines()[-tail:]
        out: dict[str, Any] = {
            "namespace": ns,
            "pod": name,
            "container": a.get("container"),
            "tail_lines": tail,
            "line_count": len(lines),
            "truncated": cut,
            "log": "\n".join(lines),
        }
        if cut:
            out["note"] = (
                f"stopped at {MAX_LOG_BYTES} bytes: these are the oldest lines of the requested "
                "tail; ask for fewer tail_lines to see the newest"
            )
        return ToolResult(out, truncated=cut)

    # --- writes (each records the prior state in meta["prior"]) -----------------------------

    async def _preview_scale_deployment(self, s: _Session, a: dict[str, Any]) -> dict[str, Any]:
        scale = await self._scale(s, a)
        current = (scale.get("spec") or {}).get("replicas", 0)
        return {"current_replicas": current, "desired_replicas": int(a["replicas"])}

    async def _scale_deployment(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns, name, want = a["namespace"], a["deployment"], int(a["replicas"])
        scale = await self._scale(s, a)
        prior = int((scale.get("spec") or {}).get("replicas", 0))
        # resourceVersion makes the recorded prior exact: a concurrent change is a 409
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        patch = {"metadata": {"resourceVersion": rv}, "spec": {"replicas": want}}
        after = await s.json(
            s.apps.patch_namespaced_deployment_scale,
            name=name,
            namespace=ns,
            body=patch,
            _content_type=MERGE,
        )
        content = {
            "namespace": ns,
            "deployment": name,
            "prior_replicas": prior,
            "replicas": (after.get("spec") or {}).get("replicas", want),
        }
        return ToolResult(content, meta={"prior": {"replicas": prior}})

    async def _scale(self, s: _Session, a: dict[str, Any]) -> dict[str, Any]:
        return await s.json(
            s.apps.read_namespaced_deployment_scale,
            name=a["deployment"],
            namespace=a["namespace"],
        )

    async def _preview_rollout_restart(self, s: _Session, a: dict[str, Any]) -> dict[str, Any]:
        d = await self._deployment(s, a)
        return {
            "deployment": a["deployment"],
            "replicas": (d.get("spec") or {}).get("replicas"),
            "last_restarted_at": _restarted_at(d),
            "paused": bool((d.get("spec") or {}).get("paused")),
        }

    async def _rollout_restart(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns, name = a["namespace"], a["deployment"]
        d = await self._deployment(s, a)
        if (d.get("spec") or {}).get("paused"):
            raise _ApiError(f"deployment {name} is paused; resume its rollout first")
        prior = {
            "restartedAt": _restarted_at(d),
            "generation": (d.get("metadata") or {}).get("generation"),
        }
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        after = await s.json(
            s.apps.patch_namespaced_deployment,
            name=name,
            namespace=ns,
            body=patch,
            _content_type=STRATEGIC,
        )
        content = {
            "namespace": ns,
            "deployment": name,
            "restarted_at": _restarted_at(after),
            "generation": (after.get("metadata") or {}).get("generation"),
            "replicas": (after.get("spec") or {}).get("replicas"),
        }
        return ToolResult(content, meta={"prior": prior})

    async def _deployment(self, s: _Session, a: dict[str, Any]) -> dict[str, Any]:
        return await s.json(
            s.apps.read_namespaced_deployment, name=a["deployment"], namespace=a["namespace"]
        )

    async def _preview_cordon_node(self, s: _Session, a: dict[str, Any]) -> dict[str, Any]:
        return await self._node_preview(s, a, True)

    async def _preview_uncordon_node(self, s: _Session, a: dict[str, Any]) -> dict[str, Any]:
        return await self._node_preview(s, a, False)

    async def _node_preview(self, s: _Session, a: dict[str, Any], want: bool) -> dict[str, Any]:
        node = await s.json(s.core.read_node, name=a["node"])
        current = bool((node.get("spec") or {}).get("unschedulable"))
        return {
            "node": a["node"],
            "currently_unschedulable": current,
            "desired_unschedulable": want,
        }

    async def _cordon_node(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        return await self._set_unschedulable(s, a["node"], True)

    async def _uncordon_node(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        return await self._set_unschedulable(s, a["node"], False)

    async def _set_unschedulable(self, s: _Session, name: str, want: bool) -> ToolResult:
        node = await s.json(s.core.read_node, name=name)
        prior = bool((node.get("spec") or {}).get("unschedulable"))
        changed = prior != want
        if changed:
            # like kubectl: true to cordon, field removed (null) to uncordon
            rv = (node.get("metadata") or {}).get("resourceVersion")
            patch = {"metadata": {"resourceVersion": rv}, "spec": {"unschedulable": want or None}}
            node = await s.json(s.core.patch_node, name=name, body=patch, _content_type=STRATEGIC)
        content = {
            "node": name,
            "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
            "changed": changed,
        }
        return ToolResult(content, meta={"prior": {"unschedulable": prior}})

    async def _preview_delete_pod(self, s: _Session, a: dict[str, Any]) -> dict[str, Any]:
        p = await s.json(s.core.read_namespaced_pod, name=a["pod"], namespace=a["namespace"])
        owner = _owner(p)
        return {
            "would_delete": pod_row(p, datetime.now(UTC)),
            "owner": owner,
            "replaced_by_controller": owner is not None,
        }

    async def _delete_pod(self, s: _Session, a: dict[str, Any]) -> ToolResult:
        ns, name = a["namespace"], a["pod"]
        p = await s.json(s.core.read_namespaced_pod, name=name, namespace=ns)
        prior = {**pod_row(p, datetime.now(UTC)), "owner": _owner(p)}
        # the uid precondition deletes exactly the pod that was read, not a same-named successor
        uid = (p.get("metadata") or {}).get("uid")
        opts = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid))
        if "grace_period_seconds" in a:
            opts.grace_period_seconds = int(a["grace_period_seconds"])
        await s.json(
            s.core.delete_namespaced_pod,
            name=name,
            namespace=ns,
            body=opts,
            _headers={"Content-Type": "application/json"},  # like client-go
        )
        content = {"namespace": ns, "pod": name, "deleted": True, "owner": prior["owner"]}
        return ToolResult(content, meta={"prior": prior})


# --- compact summaries ------------------------------------------------------------------


def _age(ts: Any, now: datetime) -> str | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        secs = int((now - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds())
    except ValueError:
        return None
    for unit, size, upto in (("s", 1, 120), ("m", 60, 7200), ("h", 3600, 172800)):
        if secs < upto:
            return f"{max(secs, 0) // size}{unit}"
    return f"{secs // 86400}d"


def _state(state: Any) -> str | None:
    if not isinstance(state, dict) or not state:
        return None
    if "running" in state:
        return f"running since {(state['running'] or {}).get('startedAt')}"
    if "waiting" in state:
        return f"waiting: {(state['waiting'] or {}).get('reason', 'unknown')}"
    t = state.get("terminated") or {}
    return f"terminated: {t.get('reason', 'unknown')} (exit {t.get('exitCode')})"


def _pod_status(p: dict[str, Any]) -> str:
    """The STATUS column of kubectl get pods (simplified)."""
    if (p.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = p.get("status") or {}
    for c in status.get("containerStatuses") or []:
        st = c.get("state") or {}
        reason = (st.get("waiting") or {}).get("reason") or (st.get("terminated") or {}).get(
            "reason"
        )
        if reason and reason != "Completed":
            return str(reason)
    return str(status.get("reason") or status.get("phase") or "Unknown")


def _owner(p: dict[str, Any]) -> str | None:
    for ref in (p.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def pod_row(p: dict[str, Any], now: datetime) -> dict[str, Any]:
    meta, spec, status = p.get("metadata") or {}, p.get("spec") or {}, p.get("status") or {}
    cs = status.get("containerStatuses") or []
    total = len(spec.get("containers") or []) or len(cs)
    return {
        "name": meta.get("name"),
        "status": _pod_status(p),
        "phase": status.get("phase"),
        "ready": f"{sum(1 for c in cs if c.get('ready'))}/{total}",
        "restarts": sum(int(c.get("restartCount") or 0) for c in cs),
        "node": spec.get("nodeName"),
        "age": _age(meta.get("creationTimestamp"), now),
    }


def _conditions(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
        for c in status.get("conditions") or []
    ]


def _resources(c: dict[str, Any]) -> dict[str, Any]:
    r = c.get("resources") or {}
    return {k: r[k] for k in ("requests", "limits") if r.get(k)}


def pod_detail(p: dict[str, Any], now: datetime) -> dict[str, Any]:
    meta, spec, status = p.get("metadata") or {}, p.get("spec") or {}, p.get("status") or {}
    by_name = {c.get("name"): c for c in status.get("containerStatuses") or []}
    containers = []
    for c in spec.get("containers") or []:
        st = by_name.get(c.get("name")) or {}
        containers.append(
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "ready": bool(st.get("ready")),
                "restarts": int(st.get("restartCount") or 0),
                "state": _state(st.get("state")),
                "last_state": _state(st.get("lastState")),
                **_resources(c),
            }
        )
    return {
        **pod_row(p, now),
        "namespace": meta.get("namespace"),
        "ip": status.get("podIP"),
        "qos": status.get("qosClass"),
        "started": status.get("startTime"),
        "owner": _owner(p),
        "labels": meta.get("labels") or {},
        "conditions": _conditions(status),
        "containers": containers,
    }


def _template_containers(d: dict[str, Any]) -> list[dict[str, Any]]:
    tpl = ((d.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(tpl.get("containers") or [])


def _restarted_at(d: dict[str, Any]) -> str | None:
    tpl_meta = ((d.get("spec") or {}).get("template") or {}).get("metadata") or {}
    value = (tpl_meta.get("annotations") or {}).get(RESTARTED_AT)
    return str(value) if value is not None else None


def deployment_row(d: dict[str, Any], now: datetime) -> dict[str, Any]:
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    return {
        "name": meta.get("name"),
        "replicas": spec.get("replicas", 1),
        "ready": status.get("readyReplicas") or 0,
        "updated": status.get("updatedReplicas") or 0,
        "available": status.get("availableReplicas") or 0,
        "images": [c.get("image") for c in _template_containers(d)],
        "age": _age(meta.get("creationTimestamp"), now),
    }


def deployment_detail(d: dict[str, Any], now: datetime) -> dict[str, Any]:
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    return {
        **deployment_row(d, now),
        "namespace": meta.get("namespace"),
        "labels": meta.get("labels") or {},
        "selector": (spec.get("selector") or {}).get("matchLabels") or {},
        "strategy": (spec.get("strategy") or {}).get("type"),
        "paused": bool(spec.get("paused")),
        "generation": meta.get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "restarted_at": _restarted_at(d),
        "conditions": _conditions(status),
        "containers": [
            {"name": c.get("name"), "image": c.get("image"), **_resources(c)}
            for c in _template_containers(d)
        ],
    }


def _event_time(e: dict[str, Any]) -> str:
    meta = e.get("metadata") or {}
    return str(e.get("lastTimestamp") or e.get("eventTime") or meta.get("creationTimestamp") or "")


def event_row(e: dict[str, Any], now: datetime) -> dict[str, Any]:
    obj = e.get("involvedObject") or {}
    return {
        "last_seen": _age(_event_time(e), now),
        "type": e.get("type"),
        "reason": e.get("reason"),
        "object": f"{obj.get('kind')}/{obj.get('name')}",
        "message": str(e.get("message") or "")[:MAX_MESSAGE],
        "count": e.get("count") or 1,
    }


def _readable(path: Path) -> None:
    p = path.expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"kubeconfig {p} does not exist")
    if not os.access(p, os.R_OK):
        raise PermissionError(f"kubeconfig {p} is not readable")


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename is None and exc.args:
        return str(exc.args[0])
    return f"{type(exc).__name__}: {str(exc)[:MAX_MESSAGE]}"
