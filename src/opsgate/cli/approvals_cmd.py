"""`opsgate approvals list|show|approve|deny`: the inbox, as yourself, over the REST API.

Decisions are made with your own credential (API key or OIDC token) against a running
OpsGate, so policy (four-eyes, approver groups) judges you, not the machine you run this on.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from opsgate.cli.common import echo_json

app = typer.Typer(help="Approval requests (L2/L3 operations).", no_args_is_help=True)
UrlOpt = Annotated[str, typer.Option("--url", envvar="OPSGATE_URL", help="OpsGate base URL.")]
KeyOpt = Annotated[
    str, typer.Option("--key", envvar="OPSGATE_API_KEY", help="Your API key or OIDC token.")
]


def _call(method: str, url: str, key: str, path: str, body: dict[str, Any] | None = None) -> Any:
    try:
        r = httpx.request(
            method,
            url.rstrip("/") + path,
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {url}: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        typer.echo(f"error: {r.status_code}: {detail}", err=True)
        raise typer.Exit(1)
    return r.json()


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


@app.command("approve")
def approve(
    approval_id: str,
    reason: ReasonOpt = "",
    url: UrlOpt = "http://127.0.0.1:8080",
    key: KeyOpt = "",
) -> None:
    """Approve a request (as yourself)."""
    _decide("approve", approval_id, reason, url, key)


@app.command("deny")
def deny(
    approval_id: str,
    reason: ReasonOpt = "",
    url: UrlOpt = "http://127.0.0.1:8080",
    key: KeyOpt = "",
) -> None:
    """Deny a request (as yourself)."""
    _decide("deny", approval_id, reason, url, key)
