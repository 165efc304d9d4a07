"""Federation: upstream MCP servers as connectors in OpsGate's tool catalog.

Each configured upstream becomes one `FederatedConnector`. It keeps one session with the
upstream (opsgate.tools.upstream_client: streamable HTTP, or stdio through the official MCP
client), lists the upstream's tools and offers each as
`<upstream>.<tool>`, with the zone, process area, risk and gate the admin assigned: upstream
annotations are untrusted and never used. Which listed tools are enabled is decided by a
verifier (opsgate.tools.federation_service): approved fingerprints, tool-poisoning checks.
Only configuration files define upstreams; stdio commands can never come from the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import mcp.types as t
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from opsgate.audit.canonical import canonical
from opsgate.errors import ConfigError, Unavailable
from opsgate.telemetry.logging import get_logger
from opsgate.tools.catalog import ToolSpec, ZoneSpec
from opsgate.tools.connectors.base import CallContext, ConnectorStatus, ToolResult
from opsgate.tools.federation_settings import ToolOverride, UpstreamSpec
from opsgate.tools.upstream_client import HttpLink, LinkError, UpstreamLink, list_all
from opsgate.tools.upstream_stdio import SdkLink

log = get_logger("opsgate.tools.federation")

ToolState = Literal["enabled", "pending", "changed", "flagged", "rejected"]
_LOCAL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def definition(tool: t.Tool) -> dict[str, Any]:
    """What an upstream says about a tool, as fingerprinted and scanned."""
    return {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
    }


def fingerprint(defn: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a tool definition (see `definition`)."""
    return hashlib.sha256(canonical(defn)).hexdigest()


def local_name(raw: str) -> str | None:
    """The upstream tool name made to fit OpsGate's pattern, or None when it cannot."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", raw).lower()
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", snake)).strip("_")
    return name if _LOCAL.match(name) else None


@dataclass(frozen=True)
class Discovered:
    """One listed upstream tool, mapped (spec) or not (reject says why)."""

    local: str
    upstream_name: str
    definition: dict[str, Any]
    fingerprint: str
    spec: ToolSpec | None
    reject: str = ""


@dataclass(frozen=True)
class UpstreamTool:
    """A discovered tool and its verdict; only `enabled` tools reach the catalog."""

    found: Discovered
    state: ToolState
    reason: str = ""
    findings: tuple[str, ...] = ()
    approved_fingerprint: str | None = None


def map_tools(
    spec: UpstreamSpec, zones: dict[str, ZoneSpec], listed: list[t.Tool]
) -> list[Discovered]:
    out: list[Discovered] = []
    taken: dict[str, str] = {}
    for tool in listed:
        defn = definition(tool)
        fp = fingerprint(defn)
        local = local_name(tool.name)
        if local is None:
            bad = re.sub(r"[^a-z0-9_]", "_", tool.name.lower())[:64] or "unnamed"
            out.append(Discovered(bad, tool.name, defn, fp, None, "name cannot be mapped to "
                                  "^[a-z][a-z0-9_]*$ (64 characters at most)"))  # fmt: skip
            continue
        if local in taken:
            why = f"name collides with upstream tool {taken[local]!r} after sanitising"
            out.append(Discovered(local + "_", tool.name, defn, fp, None, why))
            continue
        taken[local] = tool.name
        override = spec.tools.get(tool.name, ToolOverride())
        try:
            ts = ToolSpec(
                name=f"{spec.name}.{local}",
                title=(tool.title or tool.name)[:120],
                description=tool.description or tool.title or tool.name,
                input_schema=dict(tool.input_schema),
                output_schema=tool.output_schema,
                zone=spec.zone,
                process_area=spec.process_area,
                risk=override.risk or spec.risk,
                gate=override.gate or spec.gate,
                required_roles=list(spec.required_roles),
                credential=spec.credential,
                timeout_seconds=min(600.0, spec.timeout_seconds + spec.connect_timeout_seconds),
            )
        except ValidationError as exc:
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            out.append(Discovered(local, tool.name, defn, fp, None, why[:500]))
            continue
        out.append(Discovered(local, tool.name, defn, fp, ts))
    return out


def describe_failure(exc: BaseException, spec: UpstreamSpec) -> str:
    """A reason an operator can act on, without credentials."""
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return describe_failure(exc.exceptions[0], spec)
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {spec.command}"
    if isinstance(exc, PermissionError):
        return f"command not executable: {spec.command}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection refused or unreachable: {spec.url}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, LinkError):
        return str(exc)[:300]
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection to the upstream closed (server went away)"
    if isinstance(exc, MCPError):
        return f"upstream error {exc.code}: {exc.message[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def to_result(spec: UpstreamSpec, upstream_tool: str, r: t.CallToolResult) -> ToolResult:
    texts = [c.text for c in r.content if isinstance(c, t.TextContent)]
    other = [{"type": c.type} for c in r.content if not isinstance(c, t.TextContent)]
    text = "\n".join(texts)
    content: dict[str, Any]
    if r.is_error:
        content = {"error": text or "the upstream tool reported an error"}
    elif r.structured_content is not None:
        content = dict(r.structured_content)
    else:
        content = {"text": text}
    if other:  # binary payloads are not passed through
        content["omitted_content"] = other
    meta = {"upstream": spec.name, "upstream_tool": upstream_tool, "target_failed": False}
    return ToolResult(content, is_error=bool(r.is_error), meta=meta)


Verifier = Callable[["FederatedConnector", list[Discovered]], Awaitable[list[UpstreamTool]]]


@dataclass
class FederatedConnector:
    """The Connector for one upstream MCP server (see opsgate.tools.connectors.base)."""

    spec: UpstreamSpec
    zones: dict[str, ZoneSpec]
    # Resolves `secret://name` in the operator tenant (upstreams are platform configuration).
    resolve_secret: Callable[[str], Awaitable[str]]
    # Decides which discovered tools are enabled; without one, nothing is.
    verify: Verifier | None = None
    # Called after the enabled set changed (e.g. ToolService.refresh_tools).
    on_change: Callable[[], None] | None = None
    name: str = field(init=False)
    last_failure: str | None = field(default=None, init=False)
    _entries: dict[str, UpstreamTool] = field(default_factory=dict, init=False)
    _link: UpstreamLink | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _refreshed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.name = self.spec.name
        zone = self.zones.get(self.spec.zone)
        where = f"tools.federation.upstreams[{self.spec.name}]"
        if zone is None:
            raise ConfigError([(f"{where}.zone", f"unknown zone {self.spec.zone!r}")])
        if self.spec.process_area not in zone.process_areas:
            raise ConfigError([(f"{where}.process_area", f"not a process area of {zone.id}")])

    # --- the Connector protocol -----------------------------------------------------

    def tools(self) -> list[ToolSpec]:
        """The currently enabled tools only."""
        return [
            e.found.spec for e in self._entries.values() if e.state == "enabled" and e.found.spec
        ]

    def entries(self) -> list[UpstreamTool]:
        return list(self._entries.values())

    @property
    def failed(self) -> bool:
        """True while the upstream is unreachable (for a circuit breaker keyed by name)."""
        return self.last_failure is not None

    async def status(self) -> ConnectorStatus:
        if not self.spec.enabled:
            return ConnectorStatus("disabled", "disabled in configuration")
        if self.last_failure is not None:
            return ConnectorStatus("failed", self.last_failure)
        if not self._refreshed:
            return ConnectorStatus("disabled", "not connected yet")
        return ConnectorStatus("ready")

    async def dry_run(
        self, tool: str, args: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any] | None:
        return None

    async def call(self, tool: str, args: dict[str, Any], ctx: CallContext) -> ToolResult:
        local = tool.split(".", 1)[1]
        meta: dict[str, Any] = {"upstream": self.name, "target_failed": False}
        if self._link is None or not self._link.alive:
            try:  # reconnecting re-lists and re-verifies: a rug pull is caught here too
                await self.refresh()
            except Unavailable as exc:
                return ToolResult({"error": exc.detail}, True, meta={**meta, "target_failed": True})
        entry = self._entries.get(local)
        if entry is None or entry.state != "enabled" or entry.found.spec is None:
            why = entry.reason if entry is not None else "no longer offered by the upstream"
            return ToolResult({"error": f"{tool} is disabled: {why}"}, True, meta=meta)
        link = self._link
        try:
            assert link is not None
            async with asyncio.timeout(self.spec.timeout_seconds):
                result = await link.call_tool(entry.found.upstream_name, args)
        except MCPError as exc:  # the upstream answered: a tool-level error
            return ToolResult({"error": describe_failure(exc, self.spec)}, True, meta=meta)
        except Exception as exc:  # the link failed (upstream_client's contract)
            return await self._broken(exc, meta, link)
        return to_result(self.spec, entry.found.upstream_name, result)

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()

    # --- connecting and listing -----------------------------------------------------

    async def refresh(self) -> list[UpstreamTool]:
        """Re-list the upstream's tools and re-verify them. Raises Unavailable if unreachable
        (the last verified tools stay as they were; calls to them fail fast)."""
        if not self.spec.enabled:
            raise Unavailable(f"upstream {self.name!r} is disabled in configuration")
        async with self._lock:
            try:
                link = await self._connected()
                async with asyncio.timeout(self.spec.timeout_seconds):
                    listed = await list_all(link)
            except Exception as exc:
                reason = describe_failure(exc, self.spec)
                await self._drop(reason)
                raise Unavailable(f"upstream {self.name!r} failed: {reason}") from None
            found = map_tools(self.spec, self.zones, listed)
            before = {
                e.found.spec.name
                for e in self._entries.values()
                if e.state == "enabled" and e.found.spec
            }
            entries = await self.verify(self, found) if self.verify else [
                UpstreamTool(d, "rejected" if d.reject else "pending", d.reject) for d in found
            ]  # fmt: skip
            self._entries = {e.found.local: e for e in entries}
            self.last_failure, self._refreshed = None, True
        after = {s.name for s in self.tools()}
        if before != after and self.on_change is not None:
            self.on_change()
        return entries

    def replace(self, entry: UpstreamTool) -> None:
        """Install a new verdict for one tool (after an admin approval)."""
        self._entries[entry.found.local] = entry
        if self.on_change is not None:
            self.on_change()

    async def _connected(self) -> UpstreamLink:
        if self._link is not None and self._link.alive:
            return self._link
        await self._drop()
        spec = self.spec
        token = await self.resolve_secret(spec.credential) if spec.credential else None
        async with asyncio.timeout(spec.connect_timeout_seconds):
            if spec.transport == "http":
                assert spec.url is not None  # checked by UpstreamSpec
                read_s = spec.timeout_seconds + 5  # a backstop; calls have their own timeout
                link: UpstreamLink = await HttpLink.connect(
                    spec.url, token, connect_s=spec.connect_timeout_seconds, read_s=read_s
                )
            else:
                link = await SdkLink().open(self._stdio(token))
        self._link = link
        return link

    def _stdio(self, token: str | None) -> AbstractAsyncContextManager[Any]:
        env = dict(self.spec.env)
        if token and self.spec.credential_env:
            env[self.spec.credential_env] = token
        assert self.spec.command is not None  # checked by UpstreamSpec
        params = StdioServerParameters(
            command=self.spec.command, args=list(self.spec.args), env=env, cwd=self.spec.cwd
        )
        return stdio_client(params)

    async def _drop(self, failure: str | None = None) -> None:
        if failure is not None:
            self.last_failure = failure
            log.warning("upstream MCP server failed", upstream=self.name, reason=failure)
        if self._link is not None:
            link, self._link = self._link, None
            await link.aclose()

    async def _broken(
        self, exc: BaseException, meta: dict[str, Any], link: UpstreamLink | None
    ) -> ToolResult:
        reason = describe_failure(exc, self.spec)
        async with self._lock:
            if self._link is link:  # not a newer link that a concurrent call opened
                await self._drop(reason)
        msg = f"upstream {self.name!r} failed during the call: {reason}"
        return ToolResult({"error": msg}, True, meta={**meta, "target_failed": True})
