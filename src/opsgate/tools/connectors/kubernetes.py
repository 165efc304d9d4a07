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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from opsgate.errors import Forbidden, ValidationFailed
from opsgate.tools.catalog import ToolSpec, ZoneSpec, load_tools
from opsgate.tools.connectors.base import CallContext, ConnectorStatus, ToolResult
from opsgate.tools.connectors.kubernetes_api import (
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    MERGE,
    STRATEGIC,
    ApiError,
    Session,
    check_names,
)
from opsgate.tools.connectors.kubernetes_settings import (
    KubernetesCredential,
    KubernetesSettings,
)
from opsgate.tools.connectors.kubernetes_summaries import (
    MAX_MESSAGE,
    RESTARTED_AT,
    deployment_detail,
    deployment_row,
    event_row,
    event_time,
    owner_of,
    pod_detail,
    pod_row,
    restarted_at,
)

_NODE_OPS = {"cordon_node", "uncordon_node"}
_WRITE_OPS = {"scale_deployment", "rollout_restart", "cordon_node", "uncordon_node", "delete_pod"}


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
            handler: Callable[[Session, dict[str, Any]], Awaitable[ToolResult]] = getattr(
                self, f"_{op}"
            )
            return await handler(session, args)
        except ApiError as exc:
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
            preview: Callable[[Session, dict[str, Any]], Awaitable[dict[str, Any]]] = getattr(
                self, f"_preview_{op}"
            )
            return await preview(session, args)
        except ApiError as exc:
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

    async def _session(self, op: str, args: dict[str, Any], ctx: CallContext) -> Session:
        if not self.settings.enabled:
            raise ApiError("the kubernetes connector is disabled (tools.kubernetes.enabled)")
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
        return Session(k8s.CoreV1Api(api), k8s.AppsV1Api(api), auth, ctx.timeout, host)

    async def _client(self, key: str, cred: KubernetesCredential) -> tuple[k8s.ApiClient, str]:
        async with self._lock:
            entry = self._clients.get(key)
            if entry is None:
                try:
                    cfg = await asyncio.to_thread(self._configuration, cred)
                except Exception as exc:  # config problems become a precise error result
                    raise ApiError(f"{key}: invalid configuration: {_describe(exc)}") from None
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

    async def _list_pods(self, s: Session, a: dict[str, Any]) -> ToolResult:
        return await _listing(s, s.core.list_namespaced_pod, a, pod_row, "pods")

    async def _describe_pod(self, s: Session, a: dict[str, Any]) -> ToolResult:
        ns, name = a["namespace"], a["pod"]
        p = await s.json(s.core.read_namespaced_pod, name=name, namespace=ns)
        events = await self._events(s, ns, f"involvedObject.name={name}", 10)
        return ToolResult({**pod_detail(p, datetime.now(UTC)), "events": events})

    async def _list_deployments(self, s: Session, a: dict[str, Any]) -> ToolResult:
        return await _listing(
            s, s.apps.list_namespaced_deployment, a, deployment_row, "deployments"
        )

    async def _describe_deployment(self, s: Session, a: dict[str, Any]) -> ToolResult:
        d = await s.json(
            s.apps.read_namespaced_deployment, name=a["deployment"], namespace=a["namespace"]
        )
        return ToolResult(deployment_detail(d, datetime.now(UTC)))

    async def _list_events(self, s: Session, a: dict[str, Any]) -> ToolResult:
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
        self, s: Session, ns: str, selector: str | None, limit: int
    ) -> list[dict[str, Any]]:
        # The API returns events in storage order; fetch a page and keep the newest.
        body = await s.json(
            s.core.list_namespaced_event, namespace=ns, field_selector=selector, limit=1000
        )
        items = sorted(body.get("items") or [], key=event_time, reverse=True)[:limit]
        now = datetime.now(UTC)
        return [event_row(e, now) for e in items]

    async def _pod_logs(self, s: Session, a: dict[str, Any]) -> ToolResult:
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

    async def _preview_scale_deployment(self, s: Session, a: dict[str, Any]) -> dict[str, Any]:
        scale = await self._scale(s, a)
        current = (scale.get("spec") or {}).get("replicas", 0)
        return {"current_replicas": current, "desired_replicas": int(a["replicas"])}

    async def _scale_deployment(self, s: Session, a: dict[str, Any]) -> ToolResult:
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

    async def _scale(self, s: Session, a: dict[str, Any]) -> dict[str, Any]:
        return await s.json(
            s.apps.read_namespaced_deployment_scale,
            name=a["deployment"],
            namespace=a["namespace"],
        )

    async def _preview_rollout_restart(self, s: Session, a: dict[str, Any]) -> dict[str, Any]:
        d = await self._deployment(s, a)
        return {
            "deployment": a["deployment"],
            "replicas": (d.get("spec") or {}).get("replicas"),
            "last_restarted_at": restarted_at(d),
            "paused": bool((d.get("spec") or {}).get("paused")),
        }

    async def _rollout_restart(self, s: Session, a: dict[str, Any]) -> ToolResult:
        ns, name = a["namespace"], a["deployment"]
        d = await self._deployment(s, a)
        if (d.get("spec") or {}).get("paused"):
            raise ApiError(f"deployment {name} is paused; resume its rollout first")
        prior = {
            "restartedAt": restarted_at(d),
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
            "restarted_at": restarted_at(after),
            "generation": (after.get("metadata") or {}).get("generation"),
            "replicas": (after.get("spec") or {}).get("replicas"),
        }
        return ToolResult(content, meta={"prior": prior})

    async def _deployment(self, s: Session, a: dict[str, Any]) -> dict[str, Any]:
        return await s.json(
            s.apps.read_namespaced_deployment, name=a["deployment"], namespace=a["namespace"]
        )

    async def _preview_cordon_node(self, s: Session, a: dict[str, Any]) -> dict[str, Any]:
        return await self._node_preview(s, a, True)

    async def _preview_uncordon_node(self, s: Session, a: dict[str, Any]) -> dict[str, Any]:
        return await self._node_preview(s, a, False)

    async def _node_preview(self, s: Session, a: dict[str, Any], want: bool) -> dict[str, Any]:
        node = await s.json(s.core.read_node, name=a["node"])
        current = bool((node.get("spec") or {}).get("unschedulable"))
        return {
            "node": a["node"],
            "currently_unschedulable": current,
            "desired_unschedulable": want,
        }

    async def _cordon_node(self, s: Session, a: dict[str, Any]) -> ToolResult:
        return await self._set_unschedulable(s, a["node"], True)

    async def _uncordon_node(self, s: Session, a: dict[str, Any]) -> ToolResult:
        return await self._set_unschedulable(s, a["node"], False)

    async def _set_unschedulable(self, s: Session, name: str, want: bool) -> ToolResult:
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

    async def _preview_delete_pod(self, s: Session, a: dict[str, Any]) -> dict[str, Any]:
        p = await s.json(s.core.read_namespaced_pod, name=a["pod"], namespace=a["namespace"])
        owner = owner_of(p)
        return {
            "would_delete": pod_row(p, datetime.now(UTC)),
            "owner": owner,
            "replaced_by_controller": owner is not None,
        }

    async def _delete_pod(self, s: Session, a: dict[str, Any]) -> ToolResult:
        ns, name = a["namespace"], a["pod"]
        p = await s.json(s.core.read_namespaced_pod, name=name, namespace=ns)
        prior = {**pod_row(p, datetime.now(UTC)), "owner": owner_of(p)}
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


async def _listing(
    s: Session,
    fn: Callable[..., Any],
    a: dict[str, Any],
    row: Callable[[dict[str, Any], datetime], dict[str, Any]],
    key: str,
) -> ToolResult:
    """A namespaced list call, summarised row by row (at most 500, `more` if truncated)."""
    ns = a["namespace"]
    body = await s.json(
        fn,
        namespace=ns,
        label_selector=a.get("label_selector"),
        limit=min(int(a.get("limit", 200)), 500),
    )
    now = datetime.now(UTC)
    rows = [row(item, now) for item in body.get("items") or []]
    more = bool((body.get("metadata") or {}).get("continue"))
    return ToolResult({"namespace": ns, "count": len(rows), "more": more, key: rows})


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
