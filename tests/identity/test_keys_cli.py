from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opsgate.cli.main import app

runner = CliRunner()


def test_keys_cli_lifecycle(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["db", "upgrade", *d]).exit_code == 0
    r = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--name",
            "runbook-bot",
            "--kind",
            "agent",
            "--role",
            "agent",
            "--scope",
            "tool:host.*",
            "--expires-days",
            "7",
            *d,
        ],
    )
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("ogk_")
    key_id = key.split("_")[1]
    listed = json.loads(runner.invoke(app, ["keys", "list", *d]).stdout)
    mine = next(k for k in listed if k["id"] == key_id)
    assert mine["roles"] == ["agent"] and mine["scopes"] == ["tool:host.*"]
    assert key not in json.dumps(listed)
    r = runner.invoke(app, ["keys", "revoke", key_id, *d])
    assert r.exit_code == 0, r.output
    listed = json.loads(runner.invoke(app, ["keys", "list", *d]).stdout)
    assert next(k for k in listed if k["id"] == key_id)["revoked_at"] is not None


def test_keys_cli_bad_input(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["db", "upgrade", *d]).exit_code == 0
    r = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "root", *d])
    assert r.exit_code == 2
    r = runner.invoke(app, ["keys", "create", "--name", "x", "--tenant", "ghost", *d])
    assert r.exit_code == 1 and "unknown tenant" in r.output
    r = runner.invoke(app, ["keys", "revoke", "nosuchkey", *d])
    assert r.exit_code == 1
