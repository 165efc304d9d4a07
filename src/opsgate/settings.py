"""One root `Settings`, made of per-domain sub-settings.

Sources, highest priority first: explicit init values, `OPSGATE_*` environment variables
(nested with `__`, e.g. `OPSGATE_DATABASE__URL`), the YAML file, defaults.
Nothing else in OpsGate reads `os.environ`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from opsgate.approvals.channels.settings import ChannelsSettings
from opsgate.audit.settings import AuditSettings
from opsgate.bus.settings import BusSettings
from opsgate.errors import ConfigError
from opsgate.gateway.settings import GatewaySettings
from opsgate.guard.settings import GuardSettings
from opsgate.identity.settings import IdentitySettings
from opsgate.policy.settings import PolicySettings
from opsgate.telemetry.settings import TelemetrySettings
from opsgate.tools.settings import ToolsSettings
from opsgate.vault.settings import VaultSettings

# Values that must never be used as a secret in production mode.
KNOWN_DEFAULT_SECRETS = frozenset({"", "changeme", "change-me", "secret", "opsgate", "default"})


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opsgate"


class ApprovalsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Where approval requests are announced (Slack, Teams, webhooks): docs/approval-channels.md.
    channels: ChannelsSettings = Field(default_factory=ChannelsSettings)


class StrictModel(BaseModel):
    """Base for configuration sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ServerSettings(StrictModel):
    # Bind address (`opsgate serve/up --host`).
    host: str = "127.0.0.1"
    # Listen port (`--port`).
    port: int = Field(8080, ge=1, le=65535)
    # The URL clients use (behind a proxy); its host is allowed in the Host check.
    public_url: str | None = None
    # Host header values accepted on /api, /mcp and the console (DNS-rebinding defence).
    # Empty means: the bind host, localhost, 127.0.0.1, [::1] and public_url's host.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Browser origins allowed to call the API (CORS and the Origin check on /mcp).
    allowed_origins: list[str] = Field(default_factory=list)
    # Larger request bodies get 413, whether declared or streamed.
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # On SIGTERM: readiness turns false, then in-flight requests get this long to finish.
    graceful_shutdown_seconds: float = Field(20.0, ge=0)
    # One log line per request (uvicorn access log).
    access_log: bool = False


class DatabaseSettings(StrictModel):
    # Empty: SQLite at <data_dir>/opsgate.db. PostgreSQL: postgresql+asyncpg://user@host/db
    url: str = ""
    # Owner connection used for migrations on PostgreSQL; empty means `url`.
    admin_url: str = ""
    # Role the application connects as on PostgreSQL; granted DML by `opsgate db upgrade`,
    # owns no table, has no BYPASSRLS.
    app_role: str = "opsgate_app"
    # Connections per process (PostgreSQL); the same again may overflow.
    pool_size: int = Field(10, ge=1, le=200)
    # Log every SQL statement (debugging only).
    echo: bool = False


class Settings(BaseSettings):
    """Root configuration. Build with `load_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="OPSGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    # embedded: SQLite and in-process limits, one machine. production: PostgreSQL required,
    # secrets must be set explicitly.
    mode: Literal["embedded", "production"] = "embedded"
    # SQLite database, key files (secret.key, kek.keyring, audit-signing.key).
    data_dir: Path = Field(default_factory=default_data_dir)
    # Key for HMACs (API key hashing pepper, approval state). Embedded mode creates one in
    # the data directory on first run; production mode requires it to be set.
    secret_key: SecretStr | None = None
    # Tenant for API keys created by `up`/CLI without --tenant, and for platform events.
    default_tenant: str = "default"

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    approvals: ApprovalsSettings = Field(default_factory=ApprovalsSettings)

    # Where the YAML came from, for messages; not a setting.
    config_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.mode != "production":
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if key.lower() in KNOWN_DEFAULT_SECRETS or len(key) < 32:
            raise ValueError(
                "secret_key: production mode needs a random secret of at least 32 characters "
                "(set OPSGATE_SECRET_KEY)"
            )
        if not self.database.url.startswith("postgresql"):
            raise ValueError("database.url: production mode needs PostgreSQL")
        return self

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'opsgate.db'}"

    @property
    def database_admin_url(self) -> str:
        return self.database.admin_url or self.database_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = err["msg"].removeprefix("Value error, ")
        if path == "(root)" and ": " in msg:
            path, msg = msg.split(": ", 1)
        out.append((path, msg))
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([(str(path), f"cannot read: {exc.strerror}")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([(where, str(problem))]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([(str(path), "top level must be a mapping")])
    return data


class _DictSource(PydanticBaseSettingsSource):
    """The YAML file's contents, below env vars in priority."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_settings(
    config_file: Path | str | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from a YAML file, `OPSGATE_*` env vars and explicit overrides.

    Priority: overrides (CLI flags) > environment > file > defaults; nested sections merge.
    Raises `ConfigError` listing every problem with its key path.
    """
    path = Path(config_file) if config_file else None
    if path is None and os.environ.get("OPSGATE_CONFIG"):
        path = Path(os.environ["OPSGATE_CONFIG"])
    data: dict[str, Any] = read_yaml(path) if path else {}

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _DictSource(settings_cls, data))

    kwargs = {k: v for k, v in overrides.items() if v is not None}
    try:
        return _FileSettings(**kwargs, config_file=path)
    except ValidationError as exc:
        raise ConfigError(_problems(exc)) from exc
