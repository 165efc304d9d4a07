"""Access to the real PostgreSQL and Redis for production-mode tests.

In CI (`CI` set) a missing service fails the test loudly; on a laptop it skips with a
message saying how to start it.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

PG_HOST = os.environ.get("OPSGATE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("OPSGATE_TEST_PG_PORT", "5432"))
PG_ADMIN_USER = os.environ.get("OPSGATE_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("OPSGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

PG_HINT = "start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_HINT = "start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require(host: str, port: int, what: str, hint: str) -> None:
    if _reachable(host, port):
        return
    msg = f"{what} at {host}:{port} is unreachable; {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{msg} (mandatory in CI)", pytrace=False)
    pytest.skip(msg)


def require_postgres() -> None:
    require(PG_HOST, PG_PORT, "PostgreSQL", PG_HINT)


def require_redis() -> None:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    require(host or "127.0.0.1", int(port or 6379), "Redis", REDIS_HINT)


def pg_url(db: str, user: str = PG_ADMIN_USER) -> str:
    return f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{db}"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
