"""`opsgate approvals list|show|approve|deny|withdraw`: the inbox, as yourself, over REST.

Decisions are made with your own credential (API key or OIDC token) against a running
OpsGate, so policy (four-eyes, approver groups) judges you, not the machine you run this on.
"""

from __future__ import annotations

from typing import Annotated

import typer

from opsgate.cli.common import echo_json
from opsgate.cli.rest import KeyOpt, UrlOpt
from opsgate.cli.rest import call as _call

app = typer.Typer(help="Approval requests (L2/L3 operations).", no_args_is_help=True)


@app.command("list")
def list_(
    url: UrlOpt = "http://127.0.0.1:8080",
    key: KeyOpt = "",
    status: Annotated[str, typer.Option("--status")] = "pending",
) -> None:
    """List approval requests (default: pending)."""
    for item in _call("GET", url, key, f"/api/v1/approvals?status={status}"):
        typer.echo(
            f"{item['id']}  {item['status']:9} {item['gate']} {item['tool']:28} "
            f"by {item['requester']}  zone {item['zone']}"
        )


@app.command("show")
def show(approval_id: str, url: UrlOpt = "http://127.0.0.1:8080", key: KeyOpt = "") -> None:
    """Show one request: who asked, why, the exact arguments, the preview, policy reasons."""
    echo_json(_call("GET", url, key, f"/api/v1/approvals/{approval_id}"))


def _decide(verb: str, approval_id: str, reason: str, url: str, key: str) -> None:
    out = _call("POST", url, key, f"/api/v1/approvals/{approval_id}/{verb}", {"reason": reason})
    typer.echo(f"{approval_id}: {out['status']}")


ReasonOpt = Annotated[str, typer.Option("--reason")]


def _decision_command(verb: str, help_text: str) -> None:
    """Register `opsgate approvals <verb> ID [--reason …]`."""

    def command(
        approval_id: str,
        reason: ReasonOpt = "",
        url: UrlOpt = "http://127.0.0.1:8080",
        key: KeyOpt = "",
    ) -> None:
        _decide(verb, approval_id, reason, url, key)

    app.command(verb, help=help_text)(command)


for _verb, _help in (
    ("approve", "Approve a request (as yourself)."),
    ("deny", "Deny a request (as yourself)."),
    ("withdraw", "Withdraw your own request while nobody has decided it (it ends cancelled)."),
):
    _decision_command(_verb, _help)
