"""A stand-in connector with write, destructive and privileged tools, to drive the gates."""

from __future__ import annotations

from typing import Any

from opsgate.identity.principal import Principal
from opsgate.tools.catalog import Inverse, ToolSpec
from opsgate.tools.connectors.base import CallContext, ConnectorStatus, ToolResult

# A human in the approver group of the fake tools' zone (kubernetes).
APPROVER = Principal(
    id="ana",
    kind="user",
    tenant="default",
    groups=frozenset({"sg-k8s-approvers"}),
    roles=frozenset({"operator"}),
)


class OpsConnector:
    """A stand-in connector with write/destructive/privileged tools, to drive the gates."""

    name = "ops"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.replicas: dict[str, int] = {}
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "note": {"type": "string"},
            },
        }
        self._tools = [
            ToolSpec(
                name="k8s.restart",
                title="Restart",
                description="d",
                zone="kubernetes",
                process_area="workloads",
                risk="write",
                input_schema=schema,
            ),
            ToolSpec(
                name="k8s.delete_pod",
                title="Delete pod",
                description="d",
                zone="kubernetes",
                process_area="workloads",
                risk="destructive",
                gate="L1",
                input_schema=schema,
                supports_dry_run=True,
            ),
            ToolSpec(
                name="k8s.scale",
                title="Scale",
                description="d",
                zone="kubernetes",
                process_area="workloads",
                risk="write",
                input_schema={
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["namespace", "name", "replicas"],
                    "properties": {
                        "namespace": {"type": "string"},
                        "name": {"type": "string"},
                        "replicas": {"type": "integer", "minimum": 0},
                    },
                },
                inverse=Inverse(
                    tool="k8s.scale",
                    arguments={
                        "namespace": "args.namespace",
                        "name": "args.name",
                        "replicas": "prior.replicas",
                    },
                ),
            ),
            ToolSpec(
                name="iam.reset_mfa",
                title="Reset MFA",
                description="d",
                zone="identity-access",
                process_area="mfa",
                risk="write",
                input_schema=schema,
            ),
        ]

    def tools(self) -> list[ToolSpec]:
        return self._tools

    async def status(self) -> ConnectorStatus:
        return ConnectorStatus("ready")

    async def call(self, tool: str, args: dict[str, Any], ctx: CallContext) -> ToolResult:
        self.calls.append((tool, args))
        if tool == "k8s.scale":
            key = f"{args['namespace']}/{args['name']}"
            prior = self.replicas.get(key, 3)
            self.replicas[key] = args["replicas"]
            return ToolResult({"replicas": args["replicas"]}, meta={"prior": {"replicas": prior}})
        return ToolResult({"done": tool, "log": "token=ghp_" + "A" * 36})

    @classmethod
    def install(cls, runtime: Any) -> OpsConnector:
        o = cls()
        runtime.tools.connectors.append(o)
        runtime.tools.refresh_tools()
        return o

    async def dry_run(self, tool: str, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return {"would_delete": args.get("name")}
