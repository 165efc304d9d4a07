"""`opsgate` loads a sub-command's module only when it is used."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from opsgate.cli.main import _LAZY, app

_PROBE = """
import sys
from typer.testing import CliRunner
from opsgate.cli.main import app
r = CliRunner().invoke(app, {args!r})
assert r.exit_code == 0, r.output
heavy = ("sqlalchemy", "mcp", "opsgate.settings", "opsgate.app", "kubernetes", "boto3")
print(",".join(m for m in heavy if m in sys.modules))
"""


def _loaded_by(args: list[str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip()


def test_client_commands_do_not_import_the_server_stack() -> None:
    assert _loaded_by(["--help"]) == ""
    assert _loaded_by(["approvals", "--help"]) == ""
    assert _loaded_by(["tools", "--help"]) == ""


def test_every_command_loads_and_lists_its_help() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for name, (_, _, short) in _LAZY.items():
        assert name in top.stdout and short[:20] in top.stdout
        r = runner.invoke(app, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert f"opsgate {name}" in r.stdout
        assert "--install-completion" not in r.stdout
    assert runner.invoke(app, ["nope"]).exit_code == 2
