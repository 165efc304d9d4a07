"""Fixtures shared by the tool control plane's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from opsgate.settings import Settings
from tests.tools.fakeops import OpsConnector
from tests.tools.serving import Served, agent_key, serve


@pytest.fixture
async def served(make_settings: Any) -> AsyncIterator[Served]:
    """OpsGate over real HTTP with short approval holds, the fake ops tools and an agent key."""
    settings: Settings = make_settings(
        tools={
            "approval_hold_seconds": 5,
            "progress_interval_seconds": 0.2,
            "approval_poll_seconds": 0.5,
            "task_poll_interval_seconds": 0.1,
        }
    )
    async with serve(settings) as (url, rt):
        yield Served(f"{url}/mcp", await agent_key(rt), rt, OpsConnector.install(rt))
