"""Commands that act as *you* against a running OpsGate, over its REST API."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

UrlOpt = Annotated[str, typer.Option("--url", envvar="OPSGATE_URL", help="OpsGate base URL.")]
KeyOpt = Annotated[
    str, typer.Option("--key", envvar="OPSGATE_API_KEY", help="Your API key or OIDC token.")
]


def call(
    method: str,
    url: str,
    key: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float = 30,
) -> Any:
    try:
        r = httpx.request(
            method,
            url.rstrip("/") + path,
            json=body,
            timeout=timeout,
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
