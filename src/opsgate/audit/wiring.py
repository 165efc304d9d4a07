"""Building the audit log from settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer
from opsgate.audit.sinks import AuditSink, JsonlSink, WebhookSink
from opsgate.db.engine import Database
from opsgate.errors import ConfigError

SecretResolver = Callable[[str], Awaitable[str]]


async def build_sinks(
    settings: AuditSettings, resolve: SecretResolver | None
) -> tuple[list[AuditSink], httpx.AsyncClient | None]:
    sinks: list[AuditSink] = []
    client: httpx.AsyncClient | None = None
    for i, cfg in enumerate(settings.sinks):
        if cfg.kind == "jsonl":
            sinks.append(JsonlSink(cfg.target))
            continue
        if not cfg.target.startswith(("https://", "http://")):
            raise ConfigError([(f"audit.sinks.{i}.target", "webhook target must be an URL")])
        if not cfg.secret.startswith("secret://") or resolve is None:
            raise ConfigError(
                [(f"audit.sinks.{i}.secret", "webhook sinks need a secret:// reference")]
            )
        secret = await resolve(cfg.secret)
        client = client or httpx.AsyncClient(follow_redirects=False)
        sinks.append(WebhookSink(cfg, secret.encode(), client))
    return sinks, client


async def build_audit_log(
    db: Database,
    settings: AuditSettings,
    data_dir: Path,
    registry: CollectorRegistry,
    resolve: SecretResolver | None = None,
    fallback_tenant: str = "default",
) -> AuditLog:
    sinks, _client = await build_sinks(settings, resolve)
    log = AuditLog(db, settings, Signer.from_data_dir(data_dir), sinks, registry, fallback_tenant)
    await log.start()
    return log
