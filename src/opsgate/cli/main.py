"""The `opsgate` command.

Sub-commands load on first use: a client-side command such as `opsgate approvals list` needs
only typer and httpx, not the server's stack (SQLAlchemy, the MCP SDK, cloud clients), which
took seconds to import on every invocation. `--help` lists them from the table below without
importing any.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from opsgate import __version__

# name -> (module, attribute, one-line help). The attribute is a Typer app, or a function for
# a single command.
_LAZY: dict[str, tuple[str, str, str]] = {
    "serve": ("opsgate.cli.server_cmd", "serve", "Run the server (configuration as is)."),
    "up": ("opsgate.cli.server_cmd", "up", "First-run setup if needed, then serve."),
    "config": ("opsgate.cli.config_cmd", "app", "Inspect configuration."),
    "db": ("opsgate.cli.db_cmd", "app", "Database schema."),
    "keys": ("opsgate.cli.keys_cmd", "app", "API keys for services and agents."),
    "audit": ("opsgate.cli.audit_cmd", "app", "The tamper-evident audit trail."),
    "secrets": ("opsgate.cli.secrets_cmd", "app", "Secrets for providers and connectors."),
    "policy": ("opsgate.cli.policy_cmd", "app", "Rego policies: test, evaluate, check."),
    "approvals": ("opsgate.cli.approvals_cmd", "app", "Approval requests (L2/L3 operations)."),
    "tools": ("opsgate.cli.tools_cmd", "app", "Governed tools: list, call, executions, undo."),
    "guard": ("opsgate.cli.guard_cmd", "app", "Scan text for PII, secrets and injection."),
    "kill": ("opsgate.cli.kill_cmd", "kill_app", "Switch off model traffic."),
    "revive": ("opsgate.cli.kill_cmd", "revive_app", "Switch back on what `kill` switched off."),
}


class _LazyGroup(TyperGroup):
    """Imports a sub-command's module only when that sub-command runs or shows its help."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_LAZY))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, attr, short = _LAZY[cmd_name]
            if self._listing:  # the top-level help only needs the name and a line
                return TyperCommand(cmd_name, help=short)
            self.commands[cmd_name] = _load(
                cmd_name, getattr(importlib.import_module(module), attr)
            )
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _noop() -> None:
    """(Forces a group, so a single command keeps its name.)"""


def _load(name: str, target: Any) -> Any:
    """A Typer app or a command function as the click command `name` (built the way
    `add_typer`/`command` would have built it, without shell-completion options)."""
    wrapper = typer.Typer(add_completion=False)
    wrapper.callback()(_noop)
    if isinstance(target, typer.Typer):
        wrapper.add_typer(target, name=name)
    else:
        wrapper.command(name)(target)
    return typer.main.get_command(wrapper).commands[name]  # type: ignore[attr-defined]


app = typer.Typer(
    name="opsgate",
    cls=_LazyGroup,
    help="OpsGate: governed AI gateway and operations control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """OpsGate: governed AI gateway and operations control plane."""


@app.command("version")
def version() -> None:
    """Print the OpsGate version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
