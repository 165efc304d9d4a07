"""Compact summaries of AWS API objects (never the raw responses)."""

from __future__ import annotations

from typing import Any

Out = tuple[dict[str, Any], dict[str, Any]]  # (content, meta)


def iso(v: Any) -> str | None:
    return v.isoformat() if hasattr(v, "isoformat") else None


def instance(i: dict[str, Any]) -> dict[str, Any]:
    tags = {t.get("Key"): t.get("Value") for t in i.get("Tags", [])}
    return {
        "id": i.get("InstanceId"),
        "name": tags.get("Name"),
        "type": i.get("InstanceType"),
        "state": (i.get("State") or {}).get("Name"),
        "az": (i.get("Placement") or {}).get("AvailabilityZone"),
        "private_ip": i.get("PrivateIpAddress"),
        "public_ip": i.get("PublicIpAddress"),
        "launched": iso(i.get("LaunchTime")),
    }


def transitions(region: str, items: list[dict[str, Any]]) -> Out:
    rows = [
        {
            "id": x.get("InstanceId"),
            "previous": (x.get("PreviousState") or {}).get("Name"),
            "current": (x.get("CurrentState") or {}).get("Name"),
        }
        for x in items
    ]
    prior = {"states": {r["id"]: r["previous"] for r in rows}}
    return {"region": region, "instances": rows}, {"prior": prior}


def service(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": s.get("serviceName"),
        "status": s.get("status"),
        "desired": s.get("desiredCount"),
        "running": s.get("runningCount"),
        "pending": s.get("pendingCount"),
        "launch_type": s.get("launchType"),
        "task_definition": str(s.get("taskDefinition", "")).rsplit("/", 1)[-1],
        "deployments": len(s.get("deployments", [])),
    }


def db(d: dict[str, Any]) -> dict[str, Any]:
    endpoint = d.get("Endpoint") or {}
    return {
        "id": d.get("DBInstanceIdentifier"),
        "class": d.get("DBInstanceClass"),
        "engine": d.get("Engine"),
        "version": d.get("EngineVersion"),
        "status": d.get("DBInstanceStatus"),
        "multi_az": d.get("MultiAZ"),
        "az": d.get("AvailabilityZone"),
        "endpoint": f"{endpoint['Address']}:{endpoint.get('Port')}" if endpoint else None,
    }
