"""The connector seam."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ToolSpec


@dataclass(frozen=True)
class ConnectorStatus:
    state: Literal["ready", "disabled", "failed"]
    reason: str = ""


@dataclass(frozen=True)
class CallContext:
    principal: Principal
    tenant: str
    # Resolves a `secret://name` credential reference, at use only.
    resolve_secret: Callable[[str], Awaitable[str]]
    timeout: float = 10.0


@dataclass
class ToolResult:
    content: Any
    is_error: bool = False
    truncated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    name: str

    def tools(self) -> list[ToolSpec]: ...

    async def status(self) -> ConnectorStatus: ...

    async def call(self, tool: str, args: dict[str, Any], ctx: CallContext) -> ToolResult: ...

    async def dry_run(
        self, tool: str, args: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any] | None:
        """A preview of what a write would change (e.g. current vs desired), if supported."""
        ...
