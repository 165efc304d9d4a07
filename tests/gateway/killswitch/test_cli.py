"""`opsgate kill …` / `opsgate revive …` against a data directory a server also uses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from asgi_lifespan import LifespanManager
from typer.testing import CliRunner

from opsgate.app import create_app
from opsgate.cli.main import app as cli
from opsgate.errors import Unavailable
from opsgate.settings import load_settings
from tests.conftest import migrated
from tests.gateway.killswitch.conftest import catalog


@pytest.fixture
def config(tmp_path: Path) -> Path:
    f = tmp_path / "opsgate.yaml"
    data = {
        "data_dir": str(tmp_path / "data"),
        "gateway": {"models": catalog(), "quota": {"killswitch": {"reload_seconds": 0.2}}},
    }
    f.write_text(yaml.safe_dump(data))
    return f


def opsgate(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


async def test_cli_flip_reaches_a_running_server(config: Path) -> None:
    settings = load_settings(config)
    await migrated(settings)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        ks = app.state.runtime.killswitches
        r = await asyncio.to_thread(
            opsgate, config, "kill", "model", "other", "--reason", "bad outputs", "--by", "ana"
        )
        assert r.exit_code == 0, r.output
        assert "model 'other' switched off by cli:ana: bad outputs" in r.output
        assert "reload interval" in r.output  # the in-process bus cannot reach the server
        # The server has its own in-process bus: its reload (0.2 s here) picks it up.
        for _ in range(100):
            if ks.is_killed("model", "other"):
                break
            await asyncio.sleep(0.02)
        with pytest.raises(Unavailable, match="bad outputs"):
            ks.check(model="other", key_id=None)

        listed = await asyncio.to_thread(opsgate, config, "kill", "list")
        assert "model 'other'" in listed.output and "cli:ana" in listed.output

        r = await asyncio.to_thread(opsgate, config, "revive", "model", "other", "-r", "fixed")
        assert r.exit_code == 0, r.output
        for _ in range(100):
            if not ks.is_killed("model", "other"):
                break
            await asyncio.sleep(0.02)
        ks.check(model="other", key_id=None)


async def test_cli_bad_input(config: Path) -> None:
    await migrated(load_settings(config))

    def run(*args: str) -> Any:
        return opsgate(config, *args)

    r = await asyncio.to_thread(run, "kill", "model", "other")  # no --reason
    assert r.exit_code == 2
    r = await asyncio.to_thread(run, "kill", "model", "nope", "--reason", "x")
    assert r.exit_code == 1 and "unknown model 'nope'" in r.output
    r = await asyncio.to_thread(run, "kill", "model", "other", "--reason", "  ")
    assert r.exit_code == 1 and "reason is required" in r.output
    r = await asyncio.to_thread(run, "kill", "key", "no-such-key", "--reason", "x")
    assert r.exit_code == 1 and "no API key" in r.output
    r = await asyncio.to_thread(run, "revive", "deployment", "primary", "--reason", "x")
    assert r.exit_code == 1 and "no active kill switch" in r.output
    r = await asyncio.to_thread(run, "kill", "list", "--json")
    assert r.exit_code == 0 and r.output.strip() == "[]"


async def test_cli_key_switch_and_disabled_gateway(config: Path, tmp_path: Path) -> None:
    settings = load_settings(config)
    await migrated(settings)
    r = await asyncio.to_thread(opsgate, config, "keys", "create", "--name", "ci-bot")
    assert r.exit_code == 0, r.output
    keys = json.loads((await asyncio.to_thread(opsgate, config, "keys", "list")).output)
    (key_id,) = [k["id"] for k in keys if k["name"] == "ci-bot"]
    r = await asyncio.to_thread(opsgate, config, "kill", "key", key_id, "--reason", "leaked")
    assert r.exit_code == 0 and f"api key {key_id!r} in tenant default switched off" in r.output
    listed = json.loads((await asyncio.to_thread(opsgate, config, "kill", "list", "--json")).output)
    assert [(s["scope"], s["target"]) for s in listed] == [("api_key", key_id)]

    off = tmp_path / "off.yaml"
    off.write_text(
        yaml.safe_dump({**yaml.safe_load(config.read_text()), "gateway": {"enabled": False}})
    )
    r = await asyncio.to_thread(opsgate, off, "kill", "platform", "--reason", "x")
    assert r.exit_code == 1 and "gateway.enabled is false" in r.output


def test_cli_starts_only_what_a_flip_needs() -> None:
    """Not the server's runtime: no approval runner (it executes approved tool calls), no
    tool connectors or federation, no chat channels."""
    code = (
        "import sys, opsgate.cli.kill_cmd; "
        "bad = [m for m in ('opsgate.runtime', 'opsgate.tools.wiring', 'opsgate.tools.held', "
        "'opsgate.approvals.channels.notifier') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
