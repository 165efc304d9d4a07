"""Configuration of federated upstream MCP servers (files only, never the API).

Its own module so that loading settings does not load the MCP client stack.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsgate.tools.catalog import Gate, Risk

_SECRET_REF = r"^secret://[a-z0-9][a-z0-9._-]{0,63}$"  # noqa: S105 - a pattern


class ToolOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Risk class of this one upstream tool, replacing the upstream's default.
    risk: Risk | None = None
    # Gate of this one upstream tool, replacing the upstream's default.
    gate: Gate | None = None


class UpstreamSpec(BaseModel):
    """One upstream MCP server, as an operator configures it (files only, never the API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Namespace: the upstream's tools appear as `<name>.<tool>`; also the connector name.
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)
    # Off: configured but never connected (status "disabled").
    enabled: bool = True
    transport: Literal["stdio", "http"]
    # stdio: the executable (PATH lookup) and its arguments. No shell is involved.
    command: str | None = Field(None, min_length=1)
    args: list[str] = Field(default_factory=list)
    # stdio: extra environment for the process, over the SDK's minimal default (HOME, PATH,
    # ...); OpsGate's own environment, including its secrets, is not inherited.
    env: dict[str, str] = Field(default_factory=dict)
    # stdio: working directory of the process (default: OpsGate's).
    cwd: str | None = None
    # stdio: environment variable that receives the resolved `credential`.
    credential_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    # http: the streamable HTTP endpoint. Set by operators, so private addresses are allowed.
    url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    # Credential for the upstream (a vault reference in the operator tenant), sent as
    # `Authorization: Bearer` over http. The calling client's own token is never forwarded.
    credential: str | None = Field(None, pattern=_SECRET_REF)
    # Where the upstream's tools sit in the catalog (zones.yaml), for policy and gates.
    zone: str
    process_area: str
    # Risk class and gate of every tool of this upstream (upstream annotations are ignored).
    risk: Risk = "write"
    gate: Gate = "L2"
    # Per-tool overrides of risk and gate, keyed by the upstream's own tool name.
    tools: dict[str, ToolOverride] = Field(default_factory=dict)
    # Callers need one of these roles (admin always may), in addition to policy.
    required_roles: list[str] = Field(default_factory=list)
    # Bound on one tool call, and on connecting (spawn or HTTP handshake + initialize).
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    connect_timeout_seconds: float = Field(15.0, gt=0, le=120)
    # Enable newly discovered tools without an admin approval (their fingerprint is recorded
    # as approved). Changed and flagged tools still wait for an admin.
    trust_on_first_use: bool = False

    @model_validator(mode="after")
    def _transport_fields(self) -> UpstreamSpec:
        stdio_only = self.command or self.args or self.env or self.cwd or self.credential_env
        if self.transport == "stdio" and (self.command is None or self.url is not None):
            raise ValueError("a stdio upstream needs `command` and takes no `url`")
        if self.transport == "http" and (self.url is None or stdio_only):
            raise ValueError("an http upstream needs `url` and takes no command, args, env, cwd")
        if self.transport == "stdio" and self.credential and not self.credential_env:
            raise ValueError("a stdio upstream passes its credential in `credential_env`")
        return self


class UpstreamSettings(BaseModel):
    """Federated upstream MCP servers (docs/tools-federation.md)."""

    model_config = ConfigDict(extra="forbid")

    # The upstreams; names must be unique and must not clash with a built-in connector.
    upstreams: list[UpstreamSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> UpstreamSettings:
        names = [u.name for u in self.upstreams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"upstream names must be unique: {', '.join(dupes)}")
        return self
