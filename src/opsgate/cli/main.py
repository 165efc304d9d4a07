"""The `opsgate` command."""

from __future__ import annotations

import typer

from opsgate import __version__
from opsgate.cli import (
    approvals_cmd,
    audit_cmd,
    config_cmd,
    db_cmd,
    guard_cmd,
    keys_cmd,
    kill_cmd,
    policy_cmd,
    secrets_cmd,
    server_cmd,
    tools_cmd,
)

app = typer.Typer(
    name="opsgate",
    help="OpsGate: governed AI gateway and operations control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(server_cmd.serve)
app.command("up")(server_cmd.up)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(secrets_cmd.app, name="secrets")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(approvals_cmd.app, name="approvals")
app.add_typer(tools_cmd.app, name="tools")
app.add_typer(guard_cmd.app, name="guard")
app.add_typer(kill_cmd.kill_app, name="kill")
app.add_typer(kill_cmd.revive_app, name="revive")


@app.command("version")
def version() -> None:
    """Print the OpsGate version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
