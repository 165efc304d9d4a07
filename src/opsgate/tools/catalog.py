"""The tool catalog: tools and zones declared as data (unknown fields are errors).

A connector ships its tools in a YAML file next to it; zones ship in zones.yaml. Errors name
the file (and, for YAML syntax, the line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsgate.errors import ConfigError

Gate = Literal["L0", "L1", "L2", "L3"]
Risk = Literal["read", "write", "destructive"]
Sensitivity = Literal["public", "internal", "confidential", "restricted"]
_RISK_GATE: dict[str, Gate] = {"read": "L0", "write": "L1", "destructive": "L2"}


class Inverse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str
    # argument of the inverse call -> where its value comes from: "args.<name>" or "prior.<name>"
    arguments: dict[str, str] = Field(default_factory=dict)


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=2000)
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    zone: str
    process_area: str
    risk: Risk
    gate: Gate | None = None
    required_roles: list[str] = Field(default_factory=list)
    credential: str | None = Field(None, pattern=r"^secret://[a-z0-9][a-z0-9._-]{0,63}$")
    timeout_seconds: float = Field(10.0, gt=0, le=600)
    idempotent: bool = False
    inverse: Inverse | None = None
    supports_dry_run: bool = False

    @field_validator("input_schema", "output_schema")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            try:
                Draft202012Validator.check_schema(v)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return v

    @property
    def effective_gate(self) -> Gate:
        return self.gate or _RISK_GATE[self.risk]

    def annotations(self) -> dict[str, bool]:
        """MCP tool annotations, derived from the risk class (never taken from upstreams)."""
        return {
            "readOnlyHint": self.risk == "read",
            "destructiveHint": self.risk == "destructive",
            "idempotentHint": self.idempotent or self.risk == "read",
            "openWorldHint": True,
        }


class ZoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    process_areas: list[str] = Field(min_length=1)
    default_gate: Gate
    sensitivity: Sensitivity


class _ToolFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tools: list[ToolSpec]


class _ZoneFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zones: list[ZoneSpec] = Field(min_length=1)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError([(where, str(getattr(exc, "problem", "invalid YAML")))]) from None


def _problems(path: Path, exc: ValidationError) -> ConfigError:
    return ConfigError(
        [(f"{path}: " + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
    )


def load_zones(path: Path) -> dict[str, ZoneSpec]:
    try:
        zones = _ZoneFile.model_validate(_load_yaml(path)).zones
    except ValidationError as exc:
        raise _problems(path, exc) from None
    return {z.id: z for z in zones}


def load_tools(path: Path, zones: dict[str, ZoneSpec]) -> list[ToolSpec]:
    try:
        tools = _ToolFile.model_validate(_load_yaml(path)).tools
    except ValidationError as exc:
        raise _problems(path, exc) from None
    for t in tools:
        zone = zones.get(t.zone)
        if zone is None:
            raise ConfigError([(f"{path}: {t.name}.zone", f"unknown zone {t.zone!r}")])
        if t.process_area not in zone.process_areas:
            raise ConfigError(
                [(f"{path}: {t.name}.process_area", f"not a process area of {t.zone}")]
            )
    return tools


ZONES_FILE = Path(__file__).with_name("zones.yaml")
