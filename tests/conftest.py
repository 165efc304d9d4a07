"""Shared fixtures: embedded settings, an app client, throwaway PostgreSQL databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opsgate.app import create_app
from opsgate.bootstrap import bootstrap
from opsgate.db import migrate
from opsgate.settings import Settings, load_settings
from tests import services


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer environment leaks into tests."""
    import os

    for key in list(os.environ):
        if key.startswith("OPSGATE_") and not key.startswith("OPSGATE_TEST_"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def make_settings(data_dir: Path) -> Any:
    def _make(**over: Any) -> Settings:
        over.setdefault("data_dir", data_dir)
        return load_settings(None, **over)

    return _make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    s: Settings = make_settings()
    return s


async def migrated(settings: Settings) -> str | None:
    app_role = settings.database.app_role if settings.database.admin_url else None
    await migrate.upgrade(settings.database_admin_url, app_role)
    return await bootstrap(settings)


class AppHarness:
    def __init__(self, app: FastAPI, client: AsyncClient, admin_key: str | None) -> None:
        self.app = app
        self.client = client
        self.admin_key = admin_key

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def auth(self, key: str | None = None) -> dict[str, str]:
        k = key or self.admin_key
        assert k, "no admin key was created"
        return {"Authorization": f"Bearer {k}"}


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[AppHarness]:
    admin_key = await migrated(settings)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield AppHarness(app, client, admin_key)


@pytest.fixture
async def client(harness: AppHarness) -> AsyncClient:
    return harness.client


# --- PostgreSQL -----------------------------------------------------------------------


async def _admin_exec(sql: str, db: str = "postgres") -> None:
    conn = await asyncpg.connect(
        host=services.PG_HOST, port=services.PG_PORT, user=services.PG_ADMIN_USER, database=db
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    services.require_postgres()
    name = services.unique_name("opsgate_t")
    await _admin_exec(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_role() -> str:
    """The application role used in tests (created by `db upgrade` if missing)."""
    return "opsgate_app_test"


@pytest.fixture
async def pg_settings(pg_database: str, pg_role: str, data_dir: Path) -> Settings:
    """Production-shaped settings: migrations as owner, the app as a non-owner role."""
    s = load_settings(
        None,
        data_dir=data_dir,
        database={
            "url": services.pg_url(pg_database, pg_role),
            "admin_url": services.pg_url(pg_database),
            "app_role": pg_role,
        },
    )
    return s


@pytest.fixture
async def pg_harness(pg_settings: Settings) -> AsyncIterator[AppHarness]:
    admin_key = await migrated(pg_settings)
    app = create_app(pg_settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield AppHarness(app, client, admin_key)


@pytest.fixture
def redis_url() -> Iterator[str]:
    services.require_redis()
    yield services.REDIS_URL
