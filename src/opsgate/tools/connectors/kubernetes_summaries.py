"""Compact summaries of Kubernetes objects (pods, deployments, events), kubectl-style.

The connector returns these instead of the raw objects: what an operator or a model needs to
judge the state, small enough to pass through the guard and into a prompt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MAX_MESSAGE = 500
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


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


def owner_of(p: dict[str, Any]) -> str | None:
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
        "owner": owner_of(p),
        "labels": meta.get("labels") or {},
        "conditions": _conditions(status),
        "containers": containers,
    }


def _template_containers(d: dict[str, Any]) -> list[dict[str, Any]]:
    tpl = ((d.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(tpl.get("containers") or [])


def restarted_at(d: dict[str, Any]) -> str | None:
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
        "restarted_at": restarted_at(d),
        "conditions": _conditions(status),
        "containers": [
            {"name": c.get("name"), "image": c.get("image"), **_resources(c)}
            for c in _template_containers(d)
        ],
    }


def event_time(e: dict[str, Any]) -> str:
    meta = e.get("metadata") or {}
    return str(e.get("lastTimestamp") or e.get("eventTime") or meta.get("creationTimestamp") or "")


def event_row(e: dict[str, Any], now: datetime) -> dict[str, Any]:
    obj = e.get("involvedObject") or {}
    return {
        "last_seen": _age(event_time(e), now),
        "type": e.get("type"),
        "reason": e.get("reason"),
        "object": f"{obj.get('kind')}/{obj.get('name')}",
        "message": str(e.get("message") or "")[:MAX_MESSAGE],
        "count": e.get("count") or 1,
    }
