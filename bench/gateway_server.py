"""OpsGate for the gateway bench, in its own process, with its production defaults on:
API-key authentication, the guard, quotas (when configured), audit, metrics, tracing.

`python -m bench.gateway_server --port P --mock URL --data DIR` writes a user API key to
DIR/key.txt, then serves until stopped.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import uvicorn

from opsgate.app import create_app
from opsgate.bootstrap import bootstrap
from opsgate.db import migrate
from opsgate.identity.apikeys import ApiKeyStore
from opsgate.settings import Settings, load_settings


def bench_settings(data: Path, mock: str, port: int) -> Settings:
    def dep(name: str, scenario: str) -> dict[str, Any]:
        return {
            "name": name,
            "provider": "openai",
            "base_url": f"{mock}/{scenario}/v1",
            "model": "up-model",
            "price_in_per_1m": 0.15,
            "price_out_per_1m": 0.6,
        }

    return load_settings(
        None,
        data_dir=data,
        server={"port": port},
        telemetry={"log_level": "warning"},
        gateway={
            "models": {
                "ops-default": {"deployments": [dep("mock-0ms", "ok")]},
                "slow": {"deployments": [dep("mock-50ms", "delay-50")]},
            },
            # Limits high enough never to refuse, so every request goes through the
            # reserve-then-settle path of each dimension.
            "quota": {
                "defaults": {
                    "key": {
                        "rpm": 10_000_000,
                        "tpm": 10_000_000_000,
                        "concurrency": 100_000,
                        "budget": {"amount": 1_000_000, "period": "month"},
                    }
                }
            },
        },
    )


async def prepare(settings: Settings) -> str:
    await migrate.upgrade(settings.database_admin_url, None)
    await bootstrap(settings)
    from opsgate.db.engine import Database
    from opsgate.keyfile import resolve_secret_key

    db = Database(settings.database_url)
    try:
        from opsgate.vault.kek import build_kek
        from opsgate.vault.service import VaultService

        vault = VaultService(db, build_kek(settings.vault, settings.data_dir))
        await vault.put(settings.default_tenant, "mock-provider", "sk-mock", actor="bench")
        store = ApiKeyStore(db, resolve_secret_key(settings), settings.identity.api_key_prefix)
        issued = await store.create(
            tenant=settings.default_tenant,
            name="bench",
            kind="service",
            roles=["user"],
            scopes=[],
            created_by="bench",
            expires_at=None,
        )
        return issued.key
    finally:
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mock", required=True)
    ap.add_argument("--data", type=Path, required=True)
    args = ap.parse_args()
    settings = bench_settings(args.data, args.mock, args.port)
    key = asyncio.run(prepare(settings))
    (args.data / "key.txt").write_text(key)
    app = create_app(settings)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        server_header=False,
    )


if __name__ == "__main__":
    main()
